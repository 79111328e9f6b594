// data/labelmaps/embedded.h: the label-map TOML files compiled into the library.
//
// The .cc defining this is generated at build time by data/labelmaps/embed.cmake
// from the explicit file list in data/CMakeLists.txt.
// Thread-safety: immutable data.
#pragma once

#include <cstddef>
#include <vector>

namespace emosweep::data::internal {

struct EmbeddedFile {
  const char* name;           // file name, e.g. "emodb.toml"
  const unsigned char* data;  // bytes, followed by a NUL
  size_t size;                // without the NUL
};

const std::vector<EmbeddedFile>& EmbeddedLabelMapFiles();

}  // namespace emosweep::data::internal
