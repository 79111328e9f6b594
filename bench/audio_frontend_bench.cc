// bench/audio_frontend_bench: real-time factors of the audio front end and
// their ratio to the torchaudio anchor (bench/torchaudio_anchor.py), measured
// in the same run on the same files (EmoDB's 535 wavs by default).
//
// RTF = seconds of audio processed per second of time. Each figure is the best
// of --repeat passes, as wall time and (one-thread runs) as process CPU time;
// the CPU figure is the stable one on a machine shared with other work.
// The correctness column is the largest |ours - torchaudio| over the first
// --dump files' logmel64_stats vectors.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/audio/frontend.h"

namespace audio = emosweep::data::audio;
using nlohmann::json;

namespace {

struct Times {
  double wall = 1e30, cpu = 1e30;
};

double CpuNow() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}
double WallNow() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <typename Fn>
Times Best(int repeat, Fn fn) {
  Times best;
  for (int r = 0; r < repeat; ++r) {
    const double w0 = WallNow(), c0 = CpuNow();
    fn();
    best.wall = std::min(best.wall, WallNow() - w0);
    best.cpu = std::min(best.cpu, CpuNow() - c0);
  }
  return best;
}

[[noreturn]] void Die(const std::string& msg) {
  std::cerr << "audio_frontend_bench: " << msg << "\n";
  std::exit(1);
}

std::string Arg(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == name) return argv[i + 1];
  }
  return def;
}
bool Flag(int argc, char** argv, const std::string& name) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == name) return true;
  }
  return false;
}

json RunAnchor(const std::string& python, const std::string& script, const std::string& dir, int repeat, int dump) {
  const std::string cmd = python + " '" + script + "' --wav-dir '" + dir + "' --threads 1 --repeat " +
                          std::to_string(repeat) + " --dump " + std::to_string(dump);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return json();
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) return json{{"error", "anchor exited with status " + std::to_string(rc) + " (" + cmd + ")"}};
  try {
    return json::parse(out);
  } catch (const std::exception& e) {
    return json{{"error", std::string("cannot parse anchor output: ") + e.what()}};
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (Flag(argc, argv, "--help")) {
    std::cout << "usage: audio_frontend_bench [--wav-dir DIR] [--repeat N] [--threads 1,2] [--json]\n"
                 "                            [--no-anchor] [--python PY] [--dump N]\n";
    return 0;
  }
  const std::string dir = Arg(argc, argv, "--wav-dir", std::string(EMOSWEEP_SHARED_DIR) + "/corpora/emodb/wav");
  const int repeat = std::stoi(Arg(argc, argv, "--repeat", "3"));
  const int dump = std::stoi(Arg(argc, argv, "--dump", "20"));
  const bool as_json = Flag(argc, argv, "--json");
  const std::string python = Arg(argc, argv, "--python", "/usr/bin/python3");
  std::vector<int> thread_counts;
  {
    std::stringstream ss(Arg(argc, argv, "--threads", "1,2"));
    for (std::string t; std::getline(ss, t, ',');) thread_counts.push_back(std::stoi(t));
  }
  if (!std::filesystem::is_directory(dir)) Die(dir + " is not a directory (EmoDB lives in ../shared/corpora)");
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".wav") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) Die("no .wav files in " + dir);

  // Decode once to know the audio duration (and to warm the page cache).
  std::vector<audio::Waveform> waves;
  double audio_s = 0;
  for (const auto& f : files) {
    auto w = audio::DecodeAudio(f);
    if (!w.ok()) Die(w.status().ToString());
    audio_s += w->duration_s();
    waves.push_back(std::move(w).value());
  }
  json rows = json::array();
  auto add_row = [&](const std::string& what, int threads, const Times& t) {
    json r = {{"measure", what}, {"threads", threads}, {"wall_s", t.wall}, {"rtf_wall", audio_s / t.wall}};
    if (threads == 1) r["cpu_s"] = t.cpu, r["rtf_cpu"] = audio_s / t.cpu;
    rows.push_back(r);
    if (!as_json) std::cerr << "  measured " << what << " x" << threads << "\n";
  };

  add_row("decode", 1, Best(repeat, [&] {
            for (const auto& f : files) {
              auto w = audio::DecodeAudio(f);
              if (!w.ok()) Die(w.status().ToString());
            }
          }));
  auto run_sets = [&](const std::vector<std::string>& sets, int threads) {
    audio::AudioFeatureOptions o;
    o.feature_sets = sets;
    o.num_threads = threads;
    return Best(repeat, [&] {
      auto r = audio::ExtractAudioFeatures(files, o, nullptr);
      if (!r.ok()) Die(r.status().ToString());
    });
  };
  for (const auto& set : audio::KnownAudioFeatureSets()) add_row("decode+" + set, 1, run_sets({set}, 1));
  for (int t : thread_counts) add_row("decode+all_sets", t, run_sets(audio::KnownAudioFeatureSets(), t));
  for (int t : thread_counts) {
    if (t != 1) add_row("decode+logmel64_stats", t, run_sets({"logmel64_stats"}, t));
  }
  {
    audio::AudioFeatureOptions o;
    auto fe = audio::AudioFrontEnd::Create(o);
    if (!fe.ok()) Die(fe.status().ToString());
    add_row("features_only:logmel64_stats", 1, Best(repeat, [&] {
              for (size_t i = 0; i < waves.size(); ++i) {
                auto u = (*fe)->ExtractWaveform(waves[i], files[i]);
                if (!u.ok()) Die(u.status().ToString());
              }
            }));
  }

  json doc = {{"bench", "audio_frontend"}, {"wav_dir", dir}, {"files", files.size()}, {"audio_s", audio_s},
              {"repeat", repeat}, {"rows", rows}};
  auto find = [&](const std::string& what, int threads) -> const json* {
    for (const auto& r : rows) {
      if (r["measure"] == what && r["threads"] == threads) return &r;
    }
    return nullptr;
  };
  if (!Flag(argc, argv, "--no-anchor")) {
    const std::string script = std::string(EMOSWEEP_SOURCE_DIR) + "/bench/torchaudio_anchor.py";
    if (!as_json) std::cerr << "  running the torchaudio anchor (" << python << ")\n";
    json anchor = RunAnchor(python, script, dir, repeat, dump);
    if (anchor.contains("error") || !anchor.contains("rtf_end_to_end")) {
      doc["anchor"] = anchor.is_null() ? json{{"error", "could not start " + python}} : anchor;
    } else {
      // Correctness: our logmel64_stats of the same files vs torchaudio's.
      audio::AudioFeatureOptions o;
      std::vector<std::string> first(files.begin(), files.begin() + std::min<size_t>(files.size(), anchor["dump"].size()));
      auto ours = audio::ExtractAudioFeatures(first, o, nullptr);
      if (!ours.ok()) Die(ours.status().ToString());
      double max_diff = 0;
      for (size_t i = 0; i < first.size(); ++i) {
        const auto& ref = anchor["dump"][i];
        for (size_t d = 0; d < ref.size(); ++d) {
          max_diff = std::max(max_diff, std::fabs(double(ref[d]) - ours->sets[0].row(int64_t(i))[d]));
        }
      }
      anchor.erase("dump");
      anchor["max_abs_diff_logmel64_stats"] = max_diff;
      anchor["compared_files"] = first.size();
      const json* e2e = find("decode+logmel64_stats", 1);
      const json* feat = find("features_only:logmel64_stats", 1);
      doc["ratio_vs_torchaudio"] = {
          {"end_to_end_wall", double((*e2e)["rtf_wall"]) / double(anchor["rtf_end_to_end"])},
          {"end_to_end_cpu", double((*e2e)["rtf_cpu"]) / double(anchor["rtf_end_to_end_cpu"])},
          {"features_wall", double((*feat)["rtf_wall"]) / double(anchor["rtf_features"])},
          {"features_cpu", double((*feat)["rtf_cpu"]) / double(anchor["rtf_features_cpu"])},
          {"target", 1.5}};
      doc["anchor"] = anchor;
    }
  }

  if (as_json) {
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  std::printf("audio front end on %zu files, %.1f s of audio (%s), best of %d\n", files.size(), audio_s, dir.c_str(),
              repeat);
  std::printf("%-32s %7s %10s %10s %10s\n", "measure", "threads", "wall_s", "RTF wall", "RTF cpu");
  for (const auto& r : rows) {
    std::printf("%-32s %7d %10.3f %10.0f %10s\n", r["measure"].get<std::string>().c_str(), r["threads"].get<int>(),
                r["wall_s"].get<double>(), r["rtf_wall"].get<double>(),
                r.contains("rtf_cpu") ? std::to_string(int(std::lround(r["rtf_cpu"].get<double>()))).c_str() : "-");
  }
  for (int t : thread_counts) {
    const json *one = find("decode+logmel64_stats", 1), *many = find("decode+logmel64_stats", t);
    if (t != 1 && one && many) {
      std::printf("scaling logmel64_stats 1 -> %d threads: %.2fx (wall)\n", t,
                  double((*many)["rtf_wall"]) / double((*one)["rtf_wall"]));
    }
  }
  if (doc.contains("ratio_vs_torchaudio")) {
    const json& a = doc["anchor"];
    const json& q = doc["ratio_vs_torchaudio"];
    std::printf("torchaudio %s anchor: end-to-end RTF %.0f wall / %.0f cpu, features RTF %.0f wall / %.0f cpu\n",
                a["torchaudio"].get<std::string>().c_str(), double(a["rtf_end_to_end"]), double(a["rtf_end_to_end_cpu"]),
                double(a["rtf_features"]), double(a["rtf_features_cpu"]));
    std::printf("ours / torchaudio: end-to-end %.2fx wall, %.2fx cpu; features only %.2fx wall, %.2fx cpu (target >= 1.5x)\n",
                double(q["end_to_end_wall"]), double(q["end_to_end_cpu"]), double(q["features_wall"]),
                double(q["features_cpu"]));
    std::printf("correctness: max |ours - torchaudio| over %d files' logmel64_stats = %.2e\n",
                int(a["compared_files"]), double(a["max_abs_diff_logmel64_stats"]));
  } else if (doc.contains("anchor")) {
    std::printf("anchor not run: %s\n", doc["anchor"].dump().c_str());
  }
  return 0;
}
