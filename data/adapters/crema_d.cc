// CREMA-D adapter: AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, e.g.
// 1001_DFA_ANG_XX.wav. The twelve sentence codes map to their fixed sentences
// (seed-methods.md §4.1); the group is the intensity level (LO MD HI XX).
// Genders come from VideoDemographics.csv (ActorID, Sex) when the root has it.
// Two files of the official release are left out with a warning: 1076_MTI_SAD_XX.wav holds no audio, and
// 1064_IEO_DIS_MD.wav is a minute-long recording of every emotion (both listed as broken by the corpus's
// users and loaders).
#include <map>
#include <set>

#include "core/files.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {

const std::map<std::string, std::string>& Sentences() {
  static const std::map<std::string, std::string> kSentences = {
      {"IEO", "It's eleven o'clock."},
      {"TIE", "That is exactly what happened."},
      {"IOM", "I'm on my way to the meeting."},
      {"IWW", "I wonder what this is about."},
      {"TAI", "The airplane is almost full."},
      {"MTI", "Maybe tomorrow it will be cold."},
      {"IWL", "I would like a new alarm clock."},
      {"ITH", "I think I have a doctor's appointment."},
      {"DFA", "Don't forget a jacket."},
      {"ITS", "I think I've seen this before."},
      {"TSI", "The surface is slick."},
      {"WSI", "We'll stop in a couple of minutes."},
  };
  return kSentences;
}

Result<std::map<std::string, std::string>> ReadGenders(const std::string& root) {
  std::map<std::string, std::string> out;
  const std::string path = JoinPath(root, "VideoDemographics.csv");
  if (!FileExists(path)) return out;
  ES_ASSIGN_OR_RETURN(CsvTable t, ReadCsv(path));
  const int id = t.Column("ActorID"), sex = t.Column("Sex");
  if (id < 0 || sex < 0) return Status::Corruption(path + ": expected columns ActorID and Sex");
  for (const auto& row : t.rows) out[Trim(row[id])] = NormaliseGender(row[sex]);
  return out;
}

}  // namespace

Status ScanCremaD(const std::string& root, ScanSink& sink) {
  static const std::set<std::string> kEmotions = {"ANG", "DIS", "FEA", "HAP", "NEU", "SAD"};
  static const std::set<std::string> kLevels = {"LO", "MD", "HI", "XX", "X"};
  const std::string dir = IsDirectory(JoinPath(root, "AudioWAV")) ? JoinPath(root, "AudioWAV") : root;
  ES_ASSIGN_OR_RETURN(auto genders, ReadGenders(root));
  ES_ASSIGN_OR_RETURN(auto files, ListFiles(dir, ".wav", /*recursive=*/false));
  for (const auto& f : files) {
    const auto p = Split(Stem(f), '_');
    if (p.size() != 4 || !AllDigits(p[0])) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "file name does not parse as CREMA-D <actor>_<sentence>_<emotion>_<level>.wav"));
      continue;
    }
    static const std::map<std::string, std::string> kKnownBad = {
        {"1076_MTI_SAD_XX", "it holds no audio"},
        {"1064_IEO_DIS_MD", "it is a minute-long recording of every emotion, not one DIS utterance"}};
    if (auto known = kKnownBad.find(Stem(f)); known != kKnownBad.end()) {
      sink.Known(f, known->second);
      continue;
    }
    auto sentence = Sentences().find(p[1]);
    if (sentence == Sentences().end() || !kEmotions.count(p[2]) || !kLevels.count(p[3])) {
      ES_RETURN_IF_ERROR(sink.Bad(f, "unknown CREMA-D sentence, emotion or level code"));
      continue;
    }
    UtteranceRecord r;
    r.id = Stem(f);
    r.wav_path = f;
    r.speaker = p[0];
    auto g = genders.find(p[0]);
    r.gender = g == genders.end() ? "" : g->second;
    r.group = p[3];
    r.original_label = p[2];
    r.transcript = sentence->second;
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
