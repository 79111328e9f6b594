// Run under mpirun -n 2 or 3 (ctest label "mpi"): checks the MPI reducer
// (bucketed mean/sum across a bucket boundary, broadcast), group splitting and
// the MPI communicator's send/recv with timeouts. Exits non-zero on failure.
#include <cmath>
#include <cstdio>
#include <vector>

#include "cluster/world.h"

using namespace emosweep;
using namespace emosweep::cluster;

#define EXPECT_OR_DIE(cond, ...)                      \
  do {                                                \
    if (!(cond)) {                                    \
      std::fprintf(stderr, "rank %d: ", rank);        \
      std::fprintf(stderr, __VA_ARGS__);              \
      std::fprintf(stderr, "\n");                     \
      world->comm().Abort(3, "check failed");         \
    }                                                 \
  } while (0)

int main(int argc, char** argv) {
  auto w = CreateWorld(&argc, &argv);
  if (!w.ok()) {
    std::fprintf(stderr, "CreateWorld: %s\n", w.status().ToString().c_str());
    return 1;
  }
  auto& world = *w;
  const int rank = world->comm().rank(), size = world->comm().size();
  if (size < 2) {
    std::fprintf(stderr, "run me under mpirun -n 2 or more (size %d, backend %s)\n", size, world->comm().backend());
    return 1;
  }
  // Small buckets so that the test crosses bucket boundaries.
  BucketConfig buckets{64, 256};
  auto red = world->MakeGroupReducer(/*color=*/0, "cpu", buckets);
  EXPECT_OR_DIE(red.ok(), "MakeGroupReducer: %s", red.status().ToString().c_str());
  const size_t n = 1000;  // 4000 bytes: several buckets
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(rank + 1) * static_cast<float>(i);
  EXPECT_OR_DIE((*red)->AllreduceMean(v.data(), n).ok(), "allreduce failed");
  const float mean_factor = (size + 1) / 2.0f;  // mean of 1..size
  for (size_t i = 0; i < n; ++i)
    EXPECT_OR_DIE(std::fabs(v[i] - mean_factor * i) <= 1e-3f * (1 + i), "mean[%zu] = %f, want %f", i, v[i], mean_factor * i);
  std::vector<float> b(n, rank == 0 ? 42.0f : -1.0f);
  EXPECT_OR_DIE((*red)->Broadcast(b.data(), n, 0).ok(), "broadcast failed");
  EXPECT_OR_DIE(b[n - 1] == 42.0f, "broadcast value %f", b[n - 1]);

  // Groups of one: a reducer per rank, mean is the identity.
  auto solo = world->MakeGroupReducer(/*color=*/rank, "cpu", buckets);
  EXPECT_OR_DIE(solo.ok() && (*solo)->size() == 1, "solo group");

  // Control channel: every rank sends its rank to 0; 0 answers each.
  if (rank == 0) {
    int got = 0;
    while (got < size - 1) {
      auto m = world->comm().Recv(kAnySource, 11, 10.0);
      EXPECT_OR_DIE(m.ok() && m->has_value(), "rank 0 timed out waiting for hellos");
      EXPECT_OR_DIE((*m)->payload == "hello from " + std::to_string((*m)->source), "payload %s", (*m)->payload.c_str());
      EXPECT_OR_DIE(world->comm().Send((*m)->source, 12, std::string(100000, 'x')).ok(), "send");
      ++got;
    }
  } else {
    EXPECT_OR_DIE(world->comm().Send(0, 11, "hello from " + std::to_string(rank)).ok(), "send");
    auto m = world->comm().Recv(0, 12, 10.0);
    EXPECT_OR_DIE(m.ok() && m->has_value() && (*m)->payload.size() == 100000, "large reply missing");
    auto none = world->comm().Recv(0, 99, 0.05);
    EXPECT_OR_DIE(none.ok() && !none->has_value(), "timeout recv returned a message");
  }
  auto st = world->Finalize();
  if (rank == 0) std::printf("mpi_reducer_check: %d ranks OK\n", size);
  return st.ok() ? 0 : 1;
}
