// tests/jobs/interner_test.cc: the interning tables of SharedJson, IdList and
// FeatureMap (issue 15): a value interned at the moment its table sweeps stays in
// the table (it once did not).
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "jobs/feature_map.h"
#include "jobs/id_list.h"
#include "jobs/shared_json.h"

namespace emosweep::jobs {
namespace {

// A value whose own dead slot is there when the table sweeps: the sweep erases that
// slot, and the new value must still go into the table (it went through the erased
// slot's dangling iterator, so the next Intern made a second copy).
TEST(InternerSweep, IdListKeepsAListInternedAtASweep) {
  for (int i = 0; i < 3000; ++i) {
    {
      IdList a = IdList::Intern({"sweep-x"});
      IdList b = IdList::Intern({"sweep-x"});
      ASSERT_EQ(a.shared(), b.shared()) << "round " << i;
    }
    IdList::Intern({"sweep-filler-" + std::to_string(i)});
  }
}

TEST(InternerSweep, FeatureMapKeepsAMapInternedAtASweep) {
  for (int i = 0; i < 3000; ++i) {
    {
      FeatureMap a = FeatureMap::Intern({{"audio", "sweep-x"}});
      FeatureMap b = FeatureMap::Intern({{"audio", "sweep-x"}});
      ASSERT_EQ(a.shared(), b.shared()) << "round " << i;
    }
    FeatureMap::Intern({{"audio", "sweep-filler-" + std::to_string(i)}});
  }
}

TEST(InternerSweep, SharedJsonKeepsATreeInternedAtASweep) {
  for (int i = 0; i < 3000; ++i) {
    {
      SharedJson a = SharedJson::Intern(nlohmann::json{{"sweep", "x"}});
      SharedJson b = SharedJson::Intern(nlohmann::json{{"sweep", "x"}});
      ASSERT_EQ(a.shared(), b.shared()) << "round " << i;
    }
    SharedJson::Intern(nlohmann::json{{"sweep", "filler-" + std::to_string(i)}});
  }
}

}  // namespace
}  // namespace emosweep::jobs
