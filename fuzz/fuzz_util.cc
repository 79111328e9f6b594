// fuzz/fuzz_util.cc: scratch files and quiet logs for the harnesses.
#include "fuzz/fuzz_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/log.h"

namespace emosweep::fuzz {
namespace {

namespace fs = std::filesystem;

void RemoveScratch() {
  std::error_code ec;
  fs::remove_all(ScratchDir(), ec);
}

}  // namespace

const std::string& ScratchDir() {
  // Never destroyed: RemoveScratch runs at exit, after static destructors.
  static const std::string& dir = *new std::string([] {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    const fs::path d = base / ("emosweep-fuzz-" + std::to_string(getpid()));
    fs::create_directories(d);
    std::atexit(RemoveScratch);
    return d.string();
  }());
  return dir;
}

std::string WriteScratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the scratch directory must be writable
  return path;
}

std::string WriteScratch(const std::string& name, const std::string& text) {
  return WriteScratch(name, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

void QuietLogs() { SetLogLevel(LogLevel::kQuiet); }

}  // namespace emosweep::fuzz
