// tests/orchestrator/hand_ledger.h: a small ledger filled by hand, with a table spec.
//
// models good/mid × targets emodb/ravdess × seeds 1..3, UA chosen so the table
// is checkable by hand (see tables_test.cc); mid × ravdess never ran
// (missing cell) and good × ravdess seed 3 never ran (partial cell, †).
// Thread-safety: test-only, single-threaded.
#pragma once

#include <memory>
#include <string>

#include "orchestrator/ledger.h"
#include "protocols/expand.h"

namespace emosweep::testing {

struct HandLedger {
  protocols::Protocol protocol;
  std::unique_ptr<orchestrator::Ledger> ledger;
};

HandLedger MakeHandLedger(const std::string& path);

}  // namespace emosweep::testing
