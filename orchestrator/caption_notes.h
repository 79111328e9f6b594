// orchestrator/caption_notes.h: caption sentences built from the jobs of a
// table. TransductiveNote lists the transductive steps the jobs took
// (attribute `transductive`, protocols/transductive.h) with the inductive
// alternative of each, and where in the table they are taken.
// Thread-safety: pure functions.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "protocols/expand.h"

namespace emosweep::orchestrator {

// A job feeding a table cell, with the labels the table prints for the cell's row and column (pointers: one
// copy of each label however many jobs, 10^6 at scale; they must outlive the call).
struct CellJob {
  const protocols::PlannedJob* job;
  const std::string* row;
  const std::string* col;
};

// "Transductive steps (...): <step> (inductive: ...), in column corpus; ..."
// over the jobs feeding a table's cells (after grid selection: only the chosen
// points' jobs); `rows`/`columns` are the table's attribute names, used to say
// where a step is taken: in every cell, whole columns, whole rows, or the cells
// one by one ("row / column"). Empty when no job takes a step, else one
// sentence ending in ".".
// `table_step`, when given, names a step the table itself takes for a job's cell ("grid_selection=im": grid points
// ranked on the unlabeled target), or "" for none.
std::string TransductiveNote(const std::vector<CellJob>& jobs, const std::string& rows, const std::string& columns,
                             const std::function<std::string(const protocols::PlannedJob&)>& table_step = nullptr);

// "Speaker-dependent evaluation: ..., in cells ...": where jobs were tested on the eval set `eval` with speakers
// they trained on (attribute `speaker_overlap` names it: a split with allow_speaker_overlap). Empty when none.
std::string SpeakerOverlapNote(const std::vector<CellJob>& jobs, const std::string& rows, const std::string& columns,
                               const std::string& eval);

// "Classes (4) anger, happiness, neutral, sadness." when every job the cells report has one class set (in any
// order; printed in the order seen first), else each set with where it is ("Classes differ between cells (...):
// (4) a, b, c, d, in columns x, y; (7) ..., in column z."): UA and F1 average over a job's own classes, so cells
// of different class sets do not compare. Empty when no job names classes.
std::string ClassesNote(const std::vector<CellJob>& jobs, const std::string& rows, const std::string& columns);

// "Runs of 2 emosweep builds (provenance.git_revision): A (40 runs), B (5 runs); 1 cell mixes them: r / c. ...":
// the builds of the jobs the cells report, when more than one (job identities do not cover the build, so a
// ledger may hold results of several; docs/trainer.md, "Determinism"). `build_of` gives a job's build, "" for
// a job without one (not finished, or no provenance): not counted. Empty when the jobs name one build or none.
std::string BuildsNote(const std::vector<CellJob>& jobs,
                       const std::function<const std::string&(const protocols::PlannedJob&)>& build_of);

}  // namespace emosweep::orchestrator
