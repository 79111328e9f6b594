// core/cache_dir.h: where emosweep keeps caches (store verifications,
// protocol expansions): $EMOSWEEP_CACHE_DIR, else $XDG_CACHE_HOME/emosweep,
// else ~/.cache/emosweep; "" when caching is off (EMOSWEEP_CACHE_DIR=off) or
// no directory is known. A cache only ever saves time: losing it changes no
// result. Thread-safety: reads the environment only.
#pragma once

#include <string>

namespace emosweep {

std::string CacheDir();

}  // namespace emosweep
