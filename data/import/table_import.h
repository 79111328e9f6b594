// data/import/table_import.h: metadata CSV + feature files -> data::Corpus.
//
// The metadata CSV has one row per utterance: `id` or `file` (id = file name
// without directory and extension), `speaker`, `label` (alias `emotion`),
// optional `transcript` (alias `text`), `session`, `gender`, `group`,
// `duration` (alias `duration_s`). Each feature set comes from one file:
//  - .npy: [N, D] rows aligned with the CSV rows (all rows, before the label
//    map drops any);
//  - .npz: a member holding [N, D] aligned rows (the column-spec names it,
//    else a member named like the feature set, else the only member), or one
//    member per utterance id holding a [D] (or [1, D]) vector;
//  - .csv: keyed by id (the --id-column, else `id`/`name`/`file`), numeric
//    columns = all others except openSMILE's `frameTime` and `class`, or the
//    column-spec "FIRST..LAST" (inclusive, by header name; either end may be
//    left empty). openSMILE's ';' separator and its quoted 'name' values are
//    understood.
// Format and examples: docs/formats/import.md.
// Thread-safety: functions are reentrant.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"
#include "data/import/import_common.h"
#include "data/label_map.h"

namespace emosweep::data {

struct FeatureSource {
  std::string name;         // feature-set name
  std::string modality;     // audio | text | video
  std::string path;
  std::string column_spec;  // "" = default (see above)
};

// Parses "NAME=MODALITY:PATH[:COLUMN-SPEC]". The column spec is split off at
// the last ':' only when PATH alone does not name an existing file.
Result<FeatureSource> ParseFeatureSource(const std::string& text);

struct TableImportOptions {
  std::string metadata_csv;
  std::vector<FeatureSource> features;
  std::string corpus_name;
  std::string language;
  std::string id_column;                // feature CSVs: the id column ("" = id/name/file)
  const LabelMap* label_map = nullptr;  // null: labels must be canonical
};

Result<Corpus> ImportTable(const TableImportOptions& options, ImportReport* report);

}  // namespace emosweep::data
