// orchestrator/caption_notes.h: caption sentences built from the jobs of a
// table. TransductiveNote lists the transductive steps the jobs took
// (attribute `transductive`, protocols/transductive.h) with the inductive
// alternative of each, and where in the table they are taken.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "protocols/expand.h"

namespace emosweep::orchestrator {

// "Transductive steps (...): <step> (inductive: ...), in column corpus; ..."
// over the jobs feeding a table; `rows`/`columns` are the table's attributes,
// used to say where a step is taken: in every cell, whole columns, whole rows,
// or the cells one by one ("row / column"). Empty when no job takes a step,
// else one sentence ending in ".".
std::string TransductiveNote(const std::vector<const protocols::PlannedJob*>& jobs, const std::string& rows,
                             const std::string& columns);

}  // namespace emosweep::orchestrator
