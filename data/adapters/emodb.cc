// EmoDB adapter: wav/<SS><TTT><E><V>.wav, e.g. 03a01Fa.wav (speaker 03, text
// a01, emotion F = Freude, version a). Speakers' genders and the ten sentences
// come from the official EmoDB documentation (also in the corpus MANIFEST and
// metadata.csv); an unknown text code means the file is not EmoDB.
#include <cstring>
#include <map>

#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {

const std::map<std::string, std::string>& Texts() {
  static const std::map<std::string, std::string> kTexts = {
      {"a01", "Der Lappen liegt auf dem Eisschrank."},
      {"a02", "Das will sie am Mittwoch abgeben."},
      {"a04", "Heute abend könnte ich es ihm sagen."},
      {"a05", "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück."},
      {"a07", "In sieben Stunden wird es soweit sein."},
      {"b01", "Was sind denn das für Tüten, die da unter dem Tisch stehen?"},
      {"b02", "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter."},
      {"b03", "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht."},
      {"b09", "Ich will das eben wegbringen und dann mit Karl was trinken gehen."},
      {"b10", "Die wird auf dem Platz sein, wo wir sie immer hinlegen."},
  };
  return kTexts;
}

const std::map<std::string, std::string>& Genders() {
  static const std::map<std::string, std::string> kGenders = {
      {"03", "m"}, {"08", "f"}, {"09", "f"}, {"10", "m"}, {"11", "m"},
      {"12", "m"}, {"13", "f"}, {"14", "f"}, {"15", "m"}, {"16", "f"}};
  return kGenders;
}

constexpr const char* kEmotionLetters = "WLEAFTN";

}  // namespace

Status ScanEmodb(const std::string& root, ScanSink& sink) {
  // The official archive has wav/ under the root; accept a root that is the wav folder itself.
  const std::string dir = IsDirectory(JoinPath(root, "wav")) ? JoinPath(root, "wav") : root;
  ES_ASSIGN_OR_RETURN(auto files, ListFiles(dir, ".wav", /*recursive=*/false));
  for (const auto& f : files) {
    const std::string s = Stem(f);
    const bool shape = s.size() == 7 && AllDigits(s.substr(0, 2)) && (s[2] == 'a' || s[2] == 'b') &&
                       AllDigits(s.substr(3, 2)) && std::strchr(kEmotionLetters, s[5]) && s[5] != '\0' &&
                       s[6] >= 'a' && s[6] <= 'z';
    if (!shape) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "file name does not parse as EmoDB <SS><TTT><E><V>.wav (E one of W L E A F T N)"));
      continue;
    }
    const std::string text_id = s.substr(2, 3);
    auto text = Texts().find(text_id);
    if (text == Texts().end()) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "unknown EmoDB text code '" + text_id + "'"));
      continue;
    }
    UtteranceRecord r;
    r.id = s;
    r.wav_path = f;
    r.speaker = s.substr(0, 2);
    auto g = Genders().find(r.speaker);
    r.gender = g == Genders().end() ? "" : g->second;
    r.group = text_id;
    r.original_label = std::string(1, s[5]);
    r.transcript = text->second;
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
