// cli/protocol_library.h: the protocol library shipped with emosweep, found by name.
//
// `emosweep run quickstart ...` resolves a protocol argument that is not an
// existing file and has no directory part against the library directories,
// in this order: each entry of $EMOSWEEP_PROTOCOL_PATH (colon-separated),
// <dir of the executable>/../share/emosweep/protocols (the installed layout,
// `cmake --install`), and the source tree's protocols/library/ (a build
// tree's binary). docs/cli.md, "Protocol library".
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace emosweep::cli {

struct LibraryProtocol {
  std::string name;         // file name without ".toml"
  std::string path;         // absolute path
  std::string description;  // the protocol's `description`, "" when absent or unreadable
};

// Existing directories searched for library protocols, in search order.
std::vector<std::string> ProtocolLibraryDirs();

// `arg` itself when it names an existing file (or has a directory part);
// otherwise the first library protocol named `arg` (with or without ".toml").
// NotFound names the directories searched and the protocols available.
Result<std::string> ResolveProtocolPath(const std::string& arg);

// Every library protocol (the first of each name in search order), sorted by name.
std::vector<LibraryProtocol> ListLibraryProtocols();

}  // namespace emosweep::cli
