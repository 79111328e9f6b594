#include "core/strings.h"

#include <algorithm>

namespace emosweep {

std::string JoinStrings(const std::vector<std::string>& v, std::string_view sep, size_t n) {
  n = std::min(n, v.size());
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s.append(sep);
    s.append(v[i]);
  }
  return s;
}

}  // namespace emosweep
