// orchestrator/ledger_internal.h: what the ledger's read files (ledger_jobs.cc, ledger_metrics.cc) share.
// Internal to orchestrator/. Thread-safety: pure functions.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace emosweep::orchestrator::internal {

inline nlohmann::json ParseJsonOr(const std::string& text, nlohmann::json fallback) {
  if (text.empty()) return fallback;
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? fallback : j;
}

}  // namespace emosweep::orchestrator::internal
