// IEMOCAP adapter. Layout (the release as distributed):
//   Session<N>/dialog/EmoEvaluation/<dialog>.txt   lines "[start - end]\t<utt>\t<emo>\t[V, A, D]"
//   Session<N>/dialog/transcriptions/<dialog>.txt  lines "<utt> [start-end]: text"
//   Session<N>/sentences/wav/<dialog>/<utt>.wav
// Speaker = session prefix + the gender letter of the utterance's own suffix
// (Ses01F_impro01_M003 is spoken by Ses01M); group = improvised/scripted from
// the dialog name; the original label is the evaluation's consensus code
// (neu, hap, exc, ang, sad, fru, sur, fea, dis, oth, xxx). Unlike the GloMER
// seed (seed-methods.md §1.1), the transcript is everything after the first
// "]:" (colons inside the text are kept), looked up by utterance id.
#include <map>
#include <sstream>

#include "core/files.h"
#include "core/utf8.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {

Result<std::map<std::string, std::string>> ReadTranscripts(const std::string& path) {
  std::map<std::string, std::string> out;
  if (!FileExists(path)) return out;
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  ES_RETURN_IF_ERROR(CheckUtf8Text(text, path));
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);  // a UTF-8 BOM would join the first turn's name
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t sp = line.find(' ');
    const size_t colon = line.find("]:");
    if (sp == std::string::npos || colon == std::string::npos) continue;  // e.g. blank lines
    out[line.substr(0, sp)] = Trim(line.substr(colon + 2));
  }
  return out;
}

Status ScanEvaluation(const std::string& session_dir, const std::string& session, const std::string& eval_file,
                      ScanSink& sink) {
  const std::string dialog = Stem(eval_file);
  ES_ASSIGN_OR_RETURN(auto transcripts,
                      ReadTranscripts(JoinPath(session_dir, "dialog/transcriptions/" + dialog + ".txt")));
  ES_ASSIGN_OR_RETURN(std::string text, ReadFile(eval_file));
  ES_RETURN_IF_ERROR(CheckUtf8Text(text, eval_file));
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line[0] != '[') continue;
    const std::string where = eval_file + ":" + std::to_string(lineno);
    const size_t close = line.find(']');
    std::istringstream fields(close == std::string::npos ? "" : line.substr(close + 1));
    std::string utt, emo;
    fields >> utt >> emo;
    const size_t us = utt.rfind('_');
    if (utt.size() < 6 || emo.empty() || us == std::string::npos || us + 1 >= utt.size() ||
        (utt[us + 1] != 'F' && utt[us + 1] != 'M') || utt.compare(0, dialog.size(), dialog) != 0) {
      ES_RETURN_IF_ERROR(sink.Bad(where, "line does not parse as '[start - end] <utterance> <emotion> [V, A, D]' "
                                         "for dialog " + dialog));
      continue;
    }
    const std::string wav = JoinPath(session_dir, "sentences/wav/" + dialog + "/" + utt + ".wav");
    if (!FileExists(wav)) {
      ES_RETURN_IF_ERROR(sink.Bad(wav, "wav file missing for utterance " + utt + " listed in " + where));
      continue;
    }
    UtteranceRecord r;
    r.id = utt;
    r.wav_path = wav;
    r.speaker = utt.substr(0, 5) + utt[us + 1];
    r.gender = utt[us + 1] == 'F' ? "f" : "m";
    r.session = session;
    r.group = dialog.find("_impro") != std::string::npos ? "improvised" : "scripted";
    r.original_label = emo;
    auto t = transcripts.find(utt);
    if (t != transcripts.end()) r.transcript = t->second;
    sink.Add(std::move(r));
  }
  return Status::Ok();
}

}  // namespace

Status ScanIemocap(const std::string& root, ScanSink& sink) {
  ES_ASSIGN_OR_RETURN(auto dirs, ListDirs(root));
  int sessions = 0;
  for (const auto& d : dirs) {
    if (d.rfind("Session", 0) != 0) continue;
    ++sessions;
    const std::string session_dir = JoinPath(root, d);
    ES_ASSIGN_OR_RETURN(auto evals, ListFiles(JoinPath(session_dir, "dialog/EmoEvaluation"), ".txt", /*recursive=*/false));
    for (const auto& e : evals) ES_RETURN_IF_ERROR(ScanEvaluation(session_dir, d, e, sink));
  }
  if (sessions == 0) return Status::NotFound(root + ": no Session<N> folders (expected the IEMOCAP release layout)");
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
