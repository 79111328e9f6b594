// tests/orchestrator/hand_ledger.h: a small ledger filled by hand, with a table spec.
//
// models good/mid × targets emodb/ravdess × seeds 1..3, UA chosen so the table
// is checkable by hand (see tables_test.cc); mid × ravdess never ran
// (missing cell) and good × ravdess seed 3 never ran (partial cell, "(2/3)").
// Thread-safety: test-only, single-threaded.
#pragma once

#include <cstdint>
#include <map>
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

// Issue 14, a table over several experiments: experiments zeroshot (loco), adapt (variants dann, mmd) and
// other (never in the table) × targets emodb/ravdess × seeds 1..3; adapt/mmd × ravdess seed 3 never ran.
// UA (seeds 1, 2, 3):          emodb               ravdess
//   zeroshot                   0.50 0.52 0.54      0.40 0.41 0.42
//   adapt / dann               0.60 0.63 0.61      0.45 0.47 0.43
//   adapt / mmd                0.59 0.64 0.60      0.70 0.72 —
// The table "combined": experiments = [zeroshot, adapt], rows = [experiment, variant], columns = target,
// average = true.
HandLedger MakeMultiExperimentLedger(const std::string& path);

// Issue 14, grid selection: loco experiment "loco", model m, training corpora s1+s2, targets emodb/ravdess,
// grid points hp = train.lr=0.1 | 0.01 | 0.001, seeds 1..3, and each main job's two leave-one-source-out jobs
// (role lodo, not reportable). Mean UA per point on emodb (seed s adds 0.01 * (s - 2) to the test UA):
//   hp               val (training domain)   lodo (left-out sources)   test (target)
//   train.lr=0.1     0.80                    0.40                      0.50
//   train.lr=0.01    0.70                    0.65                      0.55
//   train.lr=0.001   0.60                    0.50                      0.60
// so training-domain validation picks 0.1, LODO 0.01 and the oracle 0.001. ravdess has the same numbers but
// one LODO job of train.lr=0.1 never ran. Table "grid": rows = model, columns = target, no grid_selection set.
HandLedger MakeGridLedger(const std::string& path);

// Grid selection without target labels: adapt experiment "adapt" (attrs kind = adapt), model m, target emodb,
// grid points hp = adapt.weight=0.1 | 1 | 10, seeds 1..3, each run's info.da_selected holding im and dev
// (and snd = im + 1) at its selected epoch. Per point:
//   hp                 test UA   im (mean)   dev (mean)
//   adapt.weight=0.1   0.50      0.30        0.30 (seed 3: DEV undefined, null)
//   adapt.weight=1     0.55      0.50        0.50
//   adapt.weight=10    0.60      0.20        0.70
// so im picks 1, dev (lowest) 0.1 and the oracle 10. Table "adapt_grid": rows = model, columns = target.
// `no_dev`: DEV undefined in every run.
HandLedger MakeAdaptGridLedger(const std::string& path, bool no_dev = false);

// The bold rule's cases: experiment loco, rows (models) "top" and "next", column (target) emodb, one job per
// seed of each map with that test UA; a negative UA is a job planned that never ran. Table "bold".
HandLedger MakeTwoRowLedger(const std::string& path, const std::map<uint64_t, double>& top,
                            const std::map<uint64_t, double>& next);

}  // namespace emosweep::testing
