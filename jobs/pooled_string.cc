// jobs/pooled_string.cc: the process-wide pool behind PooledString.
#include "jobs/pooled_string.h"

#include <mutex>
#include <ostream>
#include <unordered_set>

#include <nlohmann/json.hpp>

namespace emosweep::jobs {
namespace {

struct Pool {
  std::mutex mu;
  std::unordered_set<std::string> strings;  // nodes never move
};

Pool& ThePool() {
  static Pool* pool = new Pool;  // never destroyed: PooledStrings in static objects may outlive main
  return *pool;
}

}  // namespace

const std::string& PooledString::Empty() {
  static const std::string* empty = Intern("");
  return *empty;
}

const std::string* PooledString::Intern(std::string_view s) {
  Pool& pool = ThePool();
  std::lock_guard<std::mutex> lock(pool.mu);
  return &*pool.strings.emplace(s).first;
}

std::ostream& operator<<(std::ostream& os, const PooledString& s) { return os << s.str(); }

void to_json(nlohmann::json& j, const PooledString& s) { j = s.str(); }

void from_json(const nlohmann::json& j, PooledString& s) { s = PooledString(j.get<std::string>()); }

}  // namespace emosweep::jobs
