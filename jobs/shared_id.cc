// jobs/shared_id.cc: SharedId's empty value, streaming and JSON.
#include "jobs/shared_id.h"

#include <ostream>

#include <nlohmann/json.hpp>

namespace emosweep::jobs {

const std::string& SharedId::Empty() {
  static const std::string* empty = new std::string;  // never destroyed: SharedIds in static objects may outlive main
  return *empty;
}

std::ostream& operator<<(std::ostream& os, const SharedId& s) { return os << s.str(); }

void to_json(nlohmann::json& j, const SharedId& s) { j = s.str(); }

void from_json(const nlohmann::json& j, SharedId& s) { s = SharedId(j.get<std::string>()); }

}  // namespace emosweep::jobs
