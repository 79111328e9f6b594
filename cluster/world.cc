// cluster/world.cc: the one factory that knows which backends were built.
#include "cluster/world.h"

#include <cstdlib>

namespace emosweep::cluster {

#if EMOSWEEP_HAVE_MPI
Result<std::unique_ptr<World>> CreateMpiWorld(int* argc, char*** argv);  // cluster/mpi_world.cc
#endif

namespace {

class SingleProcessWorld final : public World {
 public:
  SingleProcessWorld() : comms_(MakeInProcWorld(1)) {}
  Communicator& comm() override { return *comms_[0]; }
  NodeLayout node() const override { return NodeLayout{}; }
  Result<std::unique_ptr<GradientReducer>> MakeGroupReducer(int, const std::string&, const BucketConfig&) override {
    return MakeLocalReducer();
  }
  Status Finalize() override { return Status::Ok(); }

 private:
  std::vector<std::unique_ptr<Communicator>> comms_;
};

int EnvInt(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 0;
}

}  // namespace

bool LaunchedByMpi() {
  return EnvInt("OMPI_COMM_WORLD_SIZE") > 0 || EnvInt("PMIX_SIZE") > 0 || std::getenv("PMIX_RANK") != nullptr ||
         EnvInt("PMI_SIZE") > 0;
}

std::unique_ptr<World> MakeSingleProcessWorld() { return std::make_unique<SingleProcessWorld>(); }

Result<std::unique_ptr<World>> CreateWorld(int* argc, char*** argv) {
  if (!LaunchedByMpi()) return MakeSingleProcessWorld();
#if EMOSWEEP_HAVE_MPI
  return CreateMpiWorld(argc, argv);
#else
  (void)argc;
  (void)argv;
  return Status::FailedPrecondition(
      "launched under mpirun/srun, but this emosweep was built without MPI (configure with -DEMOSWEEP_WITH_MPI=ON)");
#endif
}

}  // namespace emosweep::cluster
