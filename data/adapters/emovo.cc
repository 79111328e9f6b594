// EMOVO adapter: <speaker>/<emo>-<speaker>-<sentence>.wav, e.g. m2/rab-m2-l1.wav.
// Italian emotion codes (dis gio neu pau rab sor tri); speakers f1-f3, m1-m3
// (the letter is the gender). The group is the sentence code (b1, l2, n1, d1,
// ...); the corpus ships no transcripts in machine-readable form, so the
// transcript stays empty.
#include <set>

#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {

Status ScanEmovo(const std::string& root, ScanSink& sink) {
  static const std::set<std::string> kCodes = {"dis", "gio", "neu", "pau", "rab", "sor", "tri"};
  ES_ASSIGN_OR_RETURN(auto files, ListFiles(root, ".wav"));
  for (const auto& f : files) {
    const auto p = Split(Stem(f), '-');
    const bool ok = p.size() == 3 && p[1].size() >= 2 && (p[1][0] == 'f' || p[1][0] == 'm') &&
                    AllDigits(p[1].substr(1)) && p[2].size() >= 2;
    if (!ok) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "file name does not parse as EMOVO <emotion>-<speaker>-<sentence>.wav"));
      continue;
    }
    if (!kCodes.count(p[0])) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "unknown EMOVO emotion code '" + p[0] + "' (dis gio neu pau rab sor tri)"));
      continue;
    }
    UtteranceRecord r;
    r.id = Stem(f);
    r.wav_path = f;
    r.speaker = p[1];
    r.gender = std::string(1, p[1][0]);
    r.group = p[2];
    r.original_label = p[0];
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
