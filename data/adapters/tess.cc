// TESS adapter: <SPK>_<emotion>/<SPK>_<word>_<emo>.wav, e.g.
// YAF_happy/YAF_bar_happy.wav; <emo> is angry, disgust, fear, happy, neutral,
// ps (pleasant surprise) or sad. Both speakers (OAF, YAF) are female. The
// carrier phrase gives the transcript ("Say the word <word>"); the group is
// the target word.
#include <set>

#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {

Status ScanTess(const std::string& root, ScanSink& sink) {
  static const std::set<std::string> kEmotions = {"angry", "disgust", "fear", "happy", "neutral", "ps", "sad"};
  ES_ASSIGN_OR_RETURN(auto files, ListFiles(root, ".wav"));
  for (const auto& f : files) {
    const auto p = Split(Stem(f), '_');
    if (p.size() < 3 || p[0].empty() || p[1].empty()) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "file name does not parse as TESS <speaker>_<word>_<emotion>.wav"));
      continue;
    }
    const std::string speaker = p[0];
    const std::string emo = Lower(p.back());
    std::string word = p[1];
    for (size_t i = 2; i + 1 < p.size(); ++i) word += "_" + p[i];
    if (!kEmotions.count(emo)) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "unknown TESS emotion '" + p.back() + "' (angry disgust fear happy neutral ps sad)"));
      continue;
    }
    UtteranceRecord r;
    r.id = Stem(f);
    r.wav_path = f;
    r.speaker = speaker;
    r.gender = (speaker == "OAF" || speaker == "YAF") ? "f" : "";
    r.group = Lower(word);
    r.original_label = emo;
    r.transcript = "Say the word " + Lower(word);
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
