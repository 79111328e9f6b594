// cluster/communicator.h: "who talks": the host control channel between ranks.
//
// The coordinator (rank 0) and the worker groups exchange small tagged
// messages (job assignments, results, heartbeats, stop/exit) through a
// Communicator. Two implementations: MPI (cluster/communicator_mpi.cc, built
// when EMOSWEEP_WITH_MPI) and in-process (ranks are threads of one process;
// used by unit tests and by single-process runs as the world of one).
// Gradient traffic does not go through here (cluster/reducer.h).
//
// Semantics: Send never blocks on the receiver (buffered); Recv waits up to a
// timeout and returns NotFound-free "nothing yet" as an empty optional, so a
// caller can run its stall inspector between polls; no call here may hang
// forever. Messages between one pair of ranks arrive in send order.
// Thread-safety: a Communicator may be used from several threads of its rank
// (calls are serialised internally).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::cluster {

inline constexpr int kAnySource = -1;
inline constexpr int kAnyTag = -1;

struct Message {
  int source = -1;
  int tag = 0;
  std::string payload;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend() const = 0;  // "inproc" | "mpi"
  virtual Status Send(int dest, int tag, const std::string& payload) = 0;
  // Waits up to timeout_s (0 = poll once) for a message matching source/tag.
  virtual Result<std::optional<Message>> Recv(int source, int tag, double timeout_s) = 0;
  // Ends the whole world now (MPI_Abort); never returns for MPI.
  virtual void Abort(int exit_code, const std::string& why) = 0;
  // Host name of this rank (provenance, stall reports).
  virtual std::string host() const = 0;
};

// In-process world: returns `n` communicators (index = rank) sharing mailboxes.
std::vector<std::unique_ptr<Communicator>> MakeInProcWorld(int n);

}  // namespace emosweep::cluster
