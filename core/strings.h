// core/strings.h: small string helpers the commands share (joining lists for messages and tables).
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace emosweep {

// The first `n` elements of `v` (all of them by default) with `sep` between each two,
// empty elements included: {"a", "", "b"} with ", " gives "a, , b".
std::string JoinStrings(const std::vector<std::string>& v, std::string_view sep,
                        size_t n = std::string::npos);

}  // namespace emosweep
