// cluster/reducer_local.cc: the world of one. Every collective is the identity.
#include "cluster/reducer.h"

namespace emosweep::cluster {
namespace {

class LocalReducer final : public GradientReducer {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "local"; }
  Status AllreduceMean(float*, size_t) override { return Status::Ok(); }
  Status AllreduceSum(float*, size_t) override { return Status::Ok(); }
  Status Broadcast(float*, size_t, int) override { return Status::Ok(); }
};

}  // namespace

std::unique_ptr<GradientReducer> MakeLocalReducer() { return std::make_unique<LocalReducer>(); }

}  // namespace emosweep::cluster
