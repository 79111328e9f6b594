// data/import/pickle_import.h: seed feature pickles -> data::Corpus.
//
// Turns the records of one or more seed pickles (data/import/pickle.h) into a
// Corpus: `text_embed`/`text_features` -> feature set "text" (modality text),
// `audio_embed`/`audio_features` -> "audio" (modality audio), `label`/`emotion`
// mapped through a LabelMap, `sample_id` -> utterance id plus speaker, gender,
// session and group when it is an IEMOCAP-style id (rule below and in
// docs/formats/import.md). Several files (e.g. a val and a test pickle) become
// one corpus; their feature dimensions must agree.
// Thread-safety: functions are reentrant.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "data/corpus.h"
#include "data/import/import_common.h"
#include "data/label_map.h"

namespace emosweep::data {

struct PickleImportOptions {
  std::string corpus_name;              // required
  std::string language = "en";
  const LabelMap* label_map = nullptr;  // null: labels must already be canonical label names
};

// Speaker/session derivation from a seed `sample_id`.
//  - A trailing "_original" (the seeds' not-augmented marker) and then a
//    trailing ".wav" are removed to give the utterance id.
//  - IEMOCAP ids "Ses<NN><F|M>_<impro|script>..._<F|M><digits>" give
//    session "<N>" (no leading zero), speaker "Ses<NN>_<F|M>" (each IEMOCAP
//    session has one female and one male actor; the letter before the final
//    digits is the speaker of the utterance), gender "f"/"m" and group
//    "improvised"/"scripted". Anything else: speaker "unknown", known=false.
struct DerivedIds {
  std::string id, speaker = "unknown", gender, session, group;
  bool known = false;
};
DerivedIds DeriveFromSampleId(const std::string& sample_id);

Result<Corpus> ImportSeedPickles(const std::vector<std::string>& paths, const PickleImportOptions& options,
                                 ImportReport* report);

}  // namespace emosweep::data
