#include "cluster/slurm.h"

#include <fstream>

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace emosweep::cluster {
namespace {

// Runs `sh -c 'printf %s <quoted>'` and returns what the shell saw.
std::string ThroughShell(const std::string& s) {
  std::string cmd = "printf %s " + ShellQuote(s);
  std::string full = "sh -c " + ShellQuote(cmd);
  FILE* p = popen(full.c_str(), "r");
  std::string out;
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(Slurm, ShellQuoteSurvivesHostileNames) {
  for (std::string s : {std::string("plain"), std::string("with space"), std::string("it's"),
                        std::string("$(touch /tmp/es_pwned)"), std::string("`id`; rm -rf ~"),
                        std::string("a\nb\tc"), std::string("'\"'\"''"), std::string("*?[]{}|&><!"),
                        std::string("")}) {
    EXPECT_EQ(ThroughShell(s), s) << "quoted as " << ShellQuote(s);
  }
  FILE* f = std::fopen("/tmp/es_pwned", "r");
  EXPECT_EQ(f, nullptr) << "a quoted name was executed";
  if (f) std::fclose(f);
}

SubmitOptions Base() {
  SubmitOptions o;
  o.protocol = "/data/my protocol's dir/p.toml";
  o.ledger = "/data/$(reboot)/l.sqlite";
  o.binary = "/opt/emosweep/bin/emosweep";
  o.workdir = "/home/u/work dir";
  o.ntasks_per_node = 2;
  o.run_args = {"--store-dir", "/x/`id`"};
  return o;
}

TEST(Slurm, ScriptQuotesEveryShellValueAndCarriesPreemptionSettings) {
  auto r = RenderSbatchScript(Base());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::string& s = *r;
  EXPECT_NE(s.find("#SBATCH --requeue"), std::string::npos);
  EXPECT_NE(s.find("#SBATCH --signal=B:USR1@120"), std::string::npos);
  EXPECT_NE(s.find("#SBATCH --ntasks-per-node=2"), std::string::npos);
  EXPECT_NE(s.find("srun --mpi=pmix"), std::string::npos);
  EXPECT_NE(s.find(ShellQuote("/data/my protocol's dir/p.toml")), std::string::npos);
  EXPECT_NE(s.find(ShellQuote("/data/$(reboot)/l.sqlite")), std::string::npos);
  EXPECT_NE(s.find(ShellQuote("/x/`id`")), std::string::npos);
  EXPECT_NE(s.find("cd " + ShellQuote("/home/u/work dir")), std::string::npos);
  EXPECT_EQ(s.find("--array"), std::string::npos);
  // The rendered script is valid bash.
  std::string path = "/tmp/es_slurm_test_" + std::to_string(::getpid()) + ".sh";
  FILE* f = std::fopen(path.c_str(), "w");
  std::fwrite(s.data(), 1, s.size(), f);
  std::fclose(f);
  EXPECT_EQ(std::system(("bash -n " + path).c_str()), 0);
  std::remove(path.c_str());
}

TEST(Slurm, TimeLimitWithJobsLeftRequeuesItselfAtMostMaxRequeuesTimes) {
  auto o = Base();
  o.max_requeues = 3;
  auto r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok());
  const std::string& s = *r;
  EXPECT_NE(s.find("self=\"${SLURM_JOB_ID}\""), std::string::npos);
  EXPECT_NE(s.find("--status-file \"$status_file\" &"), std::string::npos) << "the run reports whether it stopped";
  EXPECT_NE(s.find("trap 'got=USR1; forward' USR1"), std::string::npos);
  EXPECT_NE(s.find("trap 'got=TERM; forward' TERM"), std::string::npos) << "preemption is Slurm's requeue";
  EXPECT_NE(s.find("if [ \"$rc\" = 3 ] || { grep -q '\"stopped\": *true' \"$status_file\""), std::string::npos)
      << "run's exit 3, or its status file: stopped with jobs left";
  EXPECT_NE(s.find("[ \"$got\" = USR1 ] && [ \"${SLURM_RESTART_COUNT:-0}\" -lt 3 ]"), std::string::npos);
  EXPECT_NE(s.find("scontrol requeue \"$self\""), std::string::npos);
  o.array_slices = 2;
  r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->find("self=\"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\""), std::string::npos)
      << "an array task requeues only itself";
  o.max_requeues = -1;
  EXPECT_FALSE(RenderSbatchScript(o).ok());
}

TEST(Slurm, ArrayModeRunsSlices) {
  auto o = Base();
  o.array_slices = 4;
  auto r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->find("#SBATCH --array=0-3"), std::string::npos);
  EXPECT_NE(r->find("--slice \"${SLURM_ARRAY_TASK_ID}/4\""), std::string::npos);
  EXPECT_NE(r->find("%A_%a.out"), std::string::npos);
}

TEST(Slurm, GpusPerNodeRunsRanksRoundRobinOnTheGpus) {
  SubmitOptions o = Base();
  o.ntasks_per_node = 5;
  o.gpus_per_node = 2;
  auto r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find("#SBATCH --gpus-per-node=2"), std::string::npos);
  EXPECT_NE(r->find(" --device 'cuda' --jobs-per-gpu 3"), std::string::npos) << *r;
  o.jobs_per_gpu = 4;  // packing chosen by the user
  EXPECT_NE(RenderSbatchScript(o)->find(" --device 'cuda' --jobs-per-gpu 4"), std::string::npos);
  o.jobs_per_gpu = 0;
  o.device = "cpu";  // GPUs allocated (e.g. for feature extraction), training on the cores: no CUDA placement
  auto c = RenderSbatchScript(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_NE(c->find(" --device 'cpu'"), std::string::npos) << *c;
  EXPECT_EQ(c->find("--jobs-per-gpu"), std::string::npos);
  o.device = "";
  o.run_args = {"--device", "cuda:1"};  // a device among the run arguments wins
  auto u = RenderSbatchScript(o);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->find("--jobs-per-gpu"), std::string::npos);
  EXPECT_NE(u->find("'--device' 'cuda:1'"), std::string::npos) << *u;
  o.gpus_per_node = 0;
  o.run_args.clear();
  EXPECT_EQ(RenderSbatchScript(o)->find("--device"), std::string::npos);
  o.device = "cuda";  // CUDA without GPUs requested: Slurm would hide every GPU
  EXPECT_FALSE(RenderSbatchScript(o).ok());
  o.gpus_per_node = 1;
  for (std::string bad : {"gpu", "cuda;reboot", "cuda:", "cuda:1x", "cudax"}) {
    o.device = bad;
    EXPECT_FALSE(RenderSbatchScript(o).ok()) << bad;
  }
  o.device = "cuda:0";
  EXPECT_TRUE(RenderSbatchScript(o).ok());
}

TEST(Slurm, GroupSizeDividesTheWorkerTasksNotAllTasks) {
  // Rank 0 coordinates, so G must divide N - 1 (as emosweep run checks); G | N used to be required, which
  // made every --group-size > 1 fail at run time.
  SubmitOptions o = Base();
  o.ntasks_per_node = 3;
  o.group_size = 2;
  auto r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find("--group-size 2"), std::string::npos);
  o.ntasks_per_node = 2;  // 1 worker task, groups of 2
  auto bad = RenderSbatchScript(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("1 worker tasks"), std::string::npos) << bad.status().ToString();
  o.nodes = 2;
  o.ntasks_per_node = 3;  // 6 tasks: 5 workers
  o.group_size = 5;
  EXPECT_TRUE(RenderSbatchScript(o).ok());
  o.group_size = 2;
  EXPECT_FALSE(RenderSbatchScript(o).ok());
  o.nodes = 1;
  o.ntasks_per_node = 1;  // rank 0 alone does the work
  o.group_size = 4;
  EXPECT_TRUE(RenderSbatchScript(o).ok());
}

TEST(Slurm, HostileDirectiveValuesAreRejected) {
  for (std::string bad : {std::string("x\n#SBATCH --uid=0"), std::string("a b"), std::string("n#c"),
                          std::string("q'"), std::string("")}) {
    auto o = Base();
    o.job_name = bad;
    EXPECT_FALSE(RenderSbatchScript(o).ok()) << bad;
    o = Base();
    o.partition = bad.empty() ? "ok" : bad;
    if (!bad.empty()) EXPECT_FALSE(RenderSbatchScript(o).ok()) << bad;
  }
  auto o = Base();
  o.time = "1:00; reboot";
  EXPECT_FALSE(RenderSbatchScript(o).ok());
  o = Base();
  o.group_size = 3;  // 2 tasks
  EXPECT_FALSE(RenderSbatchScript(o).ok());
}

// `submit` makes --log-dir absolute (default <cwd>/slurm-logs): a working directory
// whose path has a space must not make the default unusable (issue 13).
TEST(Slurm, DefaultLogDirUnderAWorkdirWithSpacesIsWrittenRelative) {
  SubmitOptions o = Base();
  o.log_dir = "/home/u/work dir/slurm-logs";
  auto r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find("#SBATCH --output=slurm-logs/%x-%j.out\n"), std::string::npos) << *r;
  EXPECT_NE(r->find("cd " + ShellQuote("/home/u/work dir") + " || exit 1"), std::string::npos);
  o.array_slices = 3;
  o.log_dir = "/home/u/work dir/logs/a/";
  r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->find("#SBATCH --output=logs/a/%x-%A_%a.out\n"), std::string::npos) << *r;
  // Outside the working directory a space still cannot be written into an #SBATCH line.
  o.log_dir = "/scratch/my logs";
  r = RenderSbatchScript(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(ExitCodeFor(r.status()), 2);
  EXPECT_NE(r.status().message().find("log-dir"), std::string::npos);
}

// The rendered script, run by bash with a fake srun and scontrol (helper-56's audit): a sweep that stops with
// jobs left and no requeue to follow exits 3 (Slurm: FAILED, so --dependency=afterok does not fire); a
// finished sweep and a requeued one exit 0; a failed step passes its status on. The fake srun stands for the
// job step: it writes the --status-file run writes and, in "wait" mode, checkpoints on USR1 as run does.
class SlurmScript : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/es_slurm_script_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Write(dir_ + "/bin/srun",
          "#!/bin/bash\n"
          "sf=''; prev=''\n"
          "for a in \"$@\"; do [ \"$prev\" = --status-file ] && sf=\"$a\"; prev=\"$a\"; done\n"
          "case \"$FAKE_MODE\" in\n"
          "  done) echo '{\"stopped\": false}' > \"$sf\"; exit 0 ;;\n"
          "  left) echo '{\"stopped\": true}' > \"$sf\"; exit 0 ;;\n"
          "  fail) exit 1 ;;\n"
          "  wait) trap 'echo \"{\\\"stopped\\\": true}\" > \"$sf\"; exit 0' USR1\n"
          "        touch \"$FAKE_READY\"; while true; do sleep 0.05; done ;;\n"
          "  left3) exit 3 ;;\n"
          "  leftsrun) echo '{\"stopped\": true, \"pending\": 4}' > \"$sf\"; exit 137 ;;\n"
          "  wait3) trap 'exit 3' USR1\n"
          "        touch \"$FAKE_READY\"; while true; do sleep 0.05; done ;;\n"
          "esac\n");
    Write(dir_ + "/bin/scontrol", "#!/bin/bash\necho \"$@\" >> \"$FAKE_LOG\"\nexit 0\n");
  }
  void TearDown() override { std::system(("rm -rf " + ShellQuote(dir_)).c_str()); }
  void Write(const std::string& path, const std::string& text) {
    std::system(("mkdir -p " + ShellQuote(path.substr(0, path.rfind('/')))).c_str());
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    std::fputs(text.c_str(), f);
    std::fclose(f);
    ::chmod(path.c_str(), 0755);
  }
  // Runs the script for `opt` in `mode` with SLURM_RESTART_COUNT `restarts`; "wait" sends USR1 (the time limit)
  // once the fake step runs. Returns the script's exit status.
  int Run(SubmitOptions opt, const std::string& mode, int restarts) {
    opt.workdir = dir_;
    opt.log_dir = dir_ + "/logs";
    std::system(("mkdir -p " + ShellQuote(opt.log_dir)).c_str());
    auto script = RenderSbatchScript(opt);
    EXPECT_TRUE(script.ok()) << script.status().ToString();
    Write(dir_ + "/job.sbatch", script.ok() ? *script : "exit 99\n");
    std::remove((dir_ + "/ready").c_str());
    const std::string env = "PATH=" + ShellQuote(dir_ + "/bin") + ":\"$PATH\" SLURM_JOB_ID=7 SLURM_RESTART_COUNT=" +
                            std::to_string(restarts) + " FAKE_MODE=" + mode + " FAKE_READY=" +
                            ShellQuote(dir_ + "/ready") + " FAKE_LOG=" + ShellQuote(dir_ + "/scontrol.log");
    std::string cmd = env + " bash " + ShellQuote(dir_ + "/job.sbatch") + " > " + ShellQuote(dir_ + "/out") + " 2>&1";
    if (mode.rfind("wait", 0) == 0)
      cmd = "(" + cmd + ") & pid=$!; for i in $(seq 200); do [ -e " + ShellQuote(dir_ + "/ready") +
            " ] && break; sleep 0.05; done; kill -USR1 $(pgrep -P $pid bash || echo $pid) 2>/dev/null; wait $pid";
    const int st = std::system(("bash -c " + ShellQuote(cmd)).c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string dir_;
};

// run says "stopped with jobs left" by its exit status, 3 (helper-66: an unwritable --status-file made a stopped
// sweep look finished); it exits 0 after a stop only when nothing was left, which is a finished sweep (helper-70:
// the script still read "stopped" from the status file and marked such a sweep FAILED, or requeued it).
TEST_F(SlurmScript, ExitStatusSaysWhetherTheSweepFinished) {
  SubmitOptions o = Base();
  o.max_requeues = 2;
  EXPECT_EQ(Run(o, "done", 0), 0) << "finished";
  EXPECT_EQ(Run(o, "fail", 0), 1) << "a failed step's status";
  EXPECT_EQ(Run(o, "left3", 0), 3) << "stopped with jobs left, no signal: nothing requeues it";
  EXPECT_EQ(Run(o, "wait3", 0), 0) << "time limit with requeues left: requeued";
  FILE* log = std::fopen((dir_ + "/scontrol.log").c_str(), "r");
  ASSERT_NE(log, nullptr) << "scontrol requeue was not called";
  char line[128] = {0};
  ASSERT_NE(std::fgets(line, sizeof line, log), nullptr);
  std::fclose(log);
  EXPECT_EQ(std::string(line), "requeue 7\n");
  EXPECT_EQ(Run(o, "wait3", 2), 3) << "time limit after the last requeue";
  std::remove((dir_ + "/scontrol.log").c_str());
  EXPECT_EQ(Run(o, "left", 0), 0) << "stopped with nothing left (exit 0, status file 'stopped'): finished";
  EXPECT_EQ(Run(o, "wait", 0), 0) << "time limit as the last job ended (exit 0): finished, not requeued";
  EXPECT_FALSE(std::ifstream(dir_ + "/scontrol.log").good()) << "a finished sweep was requeued";
  // srun reporting another status for the step (a task killed on its way out): the status file tells.
  EXPECT_EQ(Run(o, "leftsrun", 0), 3) << "status file: stopped with jobs left";
}

TEST(Slurm, OneTaskRunsWithoutGroupsAndTheSignalMustComeBeforeTheLimit) {
  SubmitOptions o = Base();
  o.ntasks_per_node = 1;
  auto r = RenderSbatchScript(o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->find("--group-size"), std::string::npos) << "one task is the single-process runner: " << *r;
  // The traps are set before the job step starts.
  EXPECT_LT(r->find("trap 'got=USR1; forward' USR1"), r->find("srun --mpi"));
  o.time = "1";
  o.signal_seconds = 60;
  EXPECT_FALSE(RenderSbatchScript(o).ok()) << "a signal due as the job starts";
  o.signal_seconds = 40;
  EXPECT_TRUE(RenderSbatchScript(o).ok());
  EXPECT_EQ(TimeLimitSeconds("90"), 5400);
  EXPECT_EQ(TimeLimitSeconds("1:30"), 90);
  EXPECT_EQ(TimeLimitSeconds("01:00:00"), 3600);
  EXPECT_EQ(TimeLimitSeconds("2-00"), 172800);
  EXPECT_EQ(TimeLimitSeconds("1-02:03:04"), 93784);
  EXPECT_EQ(TimeLimitSeconds("1:2:3:4"), -1);
  EXPECT_EQ(TimeLimitSeconds("x"), -1);
}

}  // namespace
}  // namespace emosweep::cluster
