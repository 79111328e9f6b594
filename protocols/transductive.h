// protocols/transductive.h: naming the transductive steps of a job (issue 14
// item 6; orchestrator/caption_notes.h lists them in table captions).
//
// A step is transductive when it uses data of the evaluated corpus without
// its labels. Expansion records each job's steps in the attribute
// `transductive` (absent when there is none), comma-separated, in this order:
//   feature_norm=corpus  inputs standardised by each corpus's own whole-corpus
//                        statistics, so the evaluated corpus's test utterances
//                        shape its inputs (inductive: feature_norm = "train")
//   idf                  a TF-IDF text feature set, whose IDF each store fitted
//                        on its own transcripts, test share included
//   adapt                domain adaptation on the target's unlabeled utterances
//                        (inductive: variant "none")
//   selection=dev|im|snd model selection on the unlabeled target
//                        (inductive: selection = "source_val")
//   graph                a graph model (cemobam, hemogat) evaluates the whole
//                        evaluation set as one kNN graph, so each prediction
//                        depends on the other evaluated utterances' features
//                        (inductive: a model that is not transductive)
// A separate attribute, `speaker_overlap`, names the eval sets ("test", ...) on
// which a job is tested on speakers it trained on (a test share of a split with
// allow_speaker_overlap, and a train share of the same store; not transductive,
// but named in captions the same way).
// Thread-safety: pure functions.
#pragma once

#include <string>

#include "jobs/job.h"

namespace emosweep::protocols {

inline constexpr const char* kTransductiveAttr = "transductive";
inline constexpr const char* kSpeakerOverlapAttr = "speaker_overlap";

// The steps of one job; `self_fitted_idf`: a feature set of the job's
// evaluated or unlabeled data is a TF-IDF set fitted on that store itself.
std::string TransductiveSteps(const jobs::JobSpec& spec, bool self_fitted_idf);

}  // namespace emosweep::protocols
