// data/adapters/builtin.h: the scan functions of the built-in adapters, one
// per file (data/adapters/<name>.cc); the table is in adapter.cc.
// Internal to data/adapters. Thread-safety: reentrant.
#pragma once

#include <string>

#include "data/adapters/adapter.h"

namespace emosweep::data::adapters {

Status ScanGenericCsv(const std::string& root, ScanSink& sink);
Status ScanIemocap(const std::string& root, ScanSink& sink);
Status ScanCremaD(const std::string& root, ScanSink& sink);
Status ScanRavdess(const std::string& root, ScanSink& sink);
Status ScanEmodb(const std::string& root, ScanSink& sink);
Status ScanEmovo(const std::string& root, ScanSink& sink);
Status ScanTess(const std::string& root, ScanSink& sink);
Status ScanEsd(const std::string& root, ScanSink& sink);
Status ScanMeld(const std::string& root, ScanSink& sink);

}  // namespace emosweep::data::adapters
