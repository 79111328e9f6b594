// cluster/mpi_world.cc: the MPI backend of World and Communicator.
//
// Control messages use MPI_Isend (never blocking on the receiver, so two ranks
// sending large messages to each other cannot deadlock) and MPI_Iprobe polling
// with a short sleep for Recv, so a waiting rank uses no CPU (Open MPI's
// blocking receives spin) and every wait has a timeout.
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <thread>

#include "cluster/mpi_internal.h"
#include "cluster/world.h"
#include "core/log.h"

namespace emosweep::cluster {
namespace internal {

std::mutex& MpiMutex() {
  static std::mutex mu;
  return mu;
}

Status MpiStatus(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return Status::Ok();
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return Status::Unavailable(what + ": " + std::string(msg, static_cast<size_t>(len)));
}

}  // namespace internal

namespace {
using internal::MpiMutex;
using internal::MpiStatus;

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    MPI_Get_processor_name(name, &len);
    host_.assign(name, static_cast<size_t>(len));
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "mpi"; }
  std::string host() const override { return host_; }

  Status Send(int dest, int tag, const std::string& payload) override {
    std::lock_guard<std::mutex> lock(MpiMutex());
    ReapLocked();
    pending_.push_back(Pending{payload, MPI_REQUEST_NULL});
    Pending& p = pending_.back();
    return MpiStatus(MPI_Isend(p.buffer.data(), static_cast<int>(p.buffer.size()), MPI_BYTE, dest, tag, comm_,
                               &p.request),
                     "MPI_Isend to rank " + std::to_string(dest));
  }

  Result<std::optional<Message>> Recv(int source, int tag, double timeout_s) override {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    auto nap = std::chrono::microseconds(50);
    while (true) {
      {
        std::lock_guard<std::mutex> lock(MpiMutex());
        ReapLocked();
        int flag = 0;
        MPI_Status st;
        ES_RETURN_IF_ERROR(MpiStatus(MPI_Iprobe(source == kAnySource ? MPI_ANY_SOURCE : source,
                                                tag == kAnyTag ? MPI_ANY_TAG : tag, comm_, &flag, &st),
                                     "MPI_Iprobe"));
        if (flag) {
          int count = 0;
          MPI_Get_count(&st, MPI_BYTE, &count);
          Message m;
          m.source = st.MPI_SOURCE;
          m.tag = st.MPI_TAG;
          m.payload.resize(static_cast<size_t>(count));
          ES_RETURN_IF_ERROR(MpiStatus(MPI_Recv(m.payload.data(), count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, comm_,
                                                MPI_STATUS_IGNORE),
                                       "MPI_Recv"));
          return std::optional<Message>(std::move(m));
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::optional<Message>();
      std::this_thread::sleep_for(nap);
      // Capped at 1 ms: a 5 ms cap cost ~9 ms per job handed out (two polls per
      // round trip) in bench/sweep_efficiency.sh; an idle rank's 1000 Iprobes/s
      // are still negligible CPU.
      nap = std::min(nap * 2, std::chrono::microseconds(1000));
    }
  }

  void Abort(int exit_code, const std::string& why) override {
    LOG_ERROR << "aborting all ranks: " << why;
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);
  }

  // Waits (bounded) for outstanding sends before MPI_Finalize.
  void Drain(double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (true) {
      {
        std::lock_guard<std::mutex> lock(MpiMutex());
        ReapLocked();
        if (pending_.empty()) return;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        LOG_WARN << pending_.size() << " control message(s) still unsent at shutdown";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  struct Pending {
    std::string buffer;
    MPI_Request request;
  };
  void ReapLocked() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      it = done ? pending_.erase(it) : std::next(it);
    }
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::string host_;
  std::deque<Pending> pending_;  // deque: push_back keeps earlier buffers in place
};

class MpiWorld final : public World {
 public:
  explicit MpiWorld(NodeLayout node) : comm_(MPI_COMM_WORLD), node_(node) {}
  Communicator& comm() override { return comm_; }
  NodeLayout node() const override { return node_; }

  Result<std::unique_ptr<GradientReducer>> MakeGroupReducer(int color, const std::string& device,
                                                            const BucketConfig& buckets) override {
    MPI_Comm group;
    {
      std::lock_guard<std::mutex> lock(MpiMutex());
      ES_RETURN_IF_ERROR(MpiStatus(MPI_Comm_split(MPI_COMM_WORLD, color, comm_.rank(), &group), "MPI_Comm_split"));
    }
    if (device.rfind("cuda", 0) == 0) {
#if EMOSWEEP_HAVE_NCCL
      int dev = device.size() > 5 ? std::atoi(device.c_str() + 5) : 0;
      return internal::MakeNcclReducer(group, dev, buckets);
#else
      return Status::FailedPrecondition("device " + device + " requested, but this build has no NCCL");
#endif
    }
    return internal::MakeMpiReducer(group, buckets);
  }

  Status Finalize() override {
    comm_.Drain(10.0);
    std::lock_guard<std::mutex> lock(MpiMutex());
    return MpiStatus(MPI_Finalize(), "MPI_Finalize");
  }

 private:
  MpiCommunicator comm_;
  NodeLayout node_;
};

// The ranks sharing this host, and whether world rank 0 is among them (collective).
Result<NodeLayout> ComputeNodeLayout() {
  NodeLayout n;
  int world_rank = 0;
  MPI_Comm local;
  ES_RETURN_IF_ERROR(MpiStatus(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank), "MPI_Comm_rank"));
  ES_RETURN_IF_ERROR(MpiStatus(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &local),
      "MPI_Comm_split_type"));
  MPI_Comm_rank(local, &n.local_rank);
  MPI_Comm_size(local, &n.local_size);
  int min_rank = world_rank;
  Status st = MpiStatus(MPI_Allreduce(&world_rank, &min_rank, 1, MPI_INT, MPI_MIN, local), "MPI_Allreduce");
  MPI_Comm_free(&local);
  ES_RETURN_IF_ERROR(st);
  n.has_world_rank0 = min_rank == 0;
  return n;
}

}  // namespace

Result<std::unique_ptr<World>> CreateMpiWorld(int* argc, char*** argv) {
  int provided = 0;
  int rc = MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) return MpiStatus(rc, "MPI_Init_thread");
  if (provided < MPI_THREAD_SERIALIZED) {
    MPI_Finalize();
    return Status::Unavailable("the MPI library does not provide MPI_THREAD_SERIALIZED");
  }
  // Errors come back as return codes (we turn them into Status), not as aborts.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  Result<NodeLayout> node = ComputeNodeLayout();
  if (!node.ok()) {
    MPI_Finalize();
    return node.status();
  }
  return std::unique_ptr<World>(std::make_unique<MpiWorld>(*node));
}

}  // namespace emosweep::cluster
