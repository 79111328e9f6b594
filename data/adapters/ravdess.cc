// RAVDESS adapter: Actor_AA/MM-VV-EE-II-SS-RR-AA.wav (modality, vocal channel,
// emotion, intensity, statement, repetition, actor). Odd actors are male.
// The original label is the emotion's name from the RAVDESS documentation;
// the group is the intensity ("normal" / "strong").
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {
const char* const kEmotions[] = {"neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"};
const char* const kStatements[] = {"Kids are talking by the door", "Dogs are sitting by the door"};
}  // namespace

Status ScanRavdess(const std::string& root, ScanSink& sink) {
  ES_ASSIGN_OR_RETURN(auto files, ListFiles(root, ".wav"));
  for (const auto& f : files) {
    const auto p = Split(Stem(f), '-');
    bool ok = p.size() == 7;
    for (size_t i = 0; ok && i < p.size(); ++i) ok = p[i].size() == 2 && AllDigits(p[i]);
    if (!ok) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "file name does not parse as RAVDESS MM-VV-EE-II-SS-RR-AA.wav"));
      continue;
    }
    const int emo = std::stoi(p[2]), intensity = std::stoi(p[3]), statement = std::stoi(p[4]), actor = std::stoi(p[6]);
    if (emo < 1 || emo > 8 || intensity < 1 || intensity > 2 || statement < 1 || statement > 2 || actor < 1) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "RAVDESS field out of range (emotion 01-08, intensity 01-02, statement 01-02)"));
      continue;
    }
    const std::string parent = ParentName(f);
    if (parent.rfind("Actor_", 0) == 0 && parent.substr(6) != p[6]) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "actor " + p[6] + " in the name but the file is in " + parent));
      continue;
    }
    UtteranceRecord r;
    r.id = Stem(f);
    r.wav_path = f;
    r.speaker = p[6];
    r.gender = actor % 2 == 1 ? "m" : "f";
    r.group = intensity == 1 ? "normal" : "strong";
    r.original_label = kEmotions[emo - 1];
    r.transcript = kStatements[statement - 1];
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
