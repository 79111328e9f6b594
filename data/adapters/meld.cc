// MELD adapter: <root>/{train,dev,test}_sent_emo.csv (columns Utterance,
// Speaker, Emotion, Dialogue_ID, Utterance_ID, ...) plus, when present, clips
// dia<D>_utt<U>.wav in a per-split folder: <split>/, <split>_wav/, or the
// official names train_splits/, dev_splits_complete/,
// output_repeated_splits_test/. Ids are "<split>_dia<D>_utt<U>"; session =
// split; group = "<split>_dia<D>" (the dialogue); transcript = Utterance.
// When no clip folder exists for a split its records are text-only
// (wav_path ""), which a text-only import (--features tfidf) accepts; a clip
// folder that lacks a listed clip is a bad file.
#include <map>
#include <vector>

#include "core/files.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {

// Older MELD CSVs keep cp1252 punctuation as C1 control characters encoded in UTF-8 (U+0092 for the
// apostrophe, declare-lab/MELD PR #28): mapped to the characters meant, so words are not split by them.
std::string CleanMeldText(const std::string& s) {
  static const std::map<unsigned char, const char*> kC1 = {
      {0x85, "..."}, {0x91, "'"}, {0x92, "'"}, {0x93, "\""}, {0x94, "\""}, {0x96, "-"}, {0x97, "-"}, {0xA0, " "}};
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0xC2 && i + 1 < s.size()) {
      auto it = kC1.find(static_cast<unsigned char>(s[i + 1]));
      if (it != kC1.end()) {
        out += it->second;
        ++i;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string ClipDir(const std::string& root, const std::string& split) {
  const std::string official = split == "train" ? "train_splits"
                               : split == "dev" ? "dev_splits_complete"
                                                : "output_repeated_splits_test";
  for (const std::string& d : {split, split + "_wav", official})
    if (IsDirectory(JoinPath(root, d))) return JoinPath(root, d);
  return "";
}

}  // namespace

Status ScanMeld(const std::string& root, ScanSink& sink) {
  int found = 0;
  for (const std::string split : {"train", "dev", "test"}) {
    const std::string csv = JoinPath(root, split + "_sent_emo.csv");
    if (!FileExists(csv)) continue;
    ++found;
    ES_ASSIGN_OR_RETURN(CsvTable t, ReadCsv(csv));
    const int utt_col = t.Column("Utterance"), spk = t.Column("Speaker"), emo = t.Column("Emotion"),
              dia = t.Column("Dialogue_ID"), uid = t.Column("Utterance_ID");
    if (utt_col < 0 || spk < 0 || emo < 0 || dia < 0 || uid < 0)
      return Status::Corruption(csv + ": expected columns Utterance, Speaker, Emotion, Dialogue_ID, Utterance_ID");
    const std::string clips = ClipDir(root, split);
    for (size_t i = 0; i < t.rows.size(); ++i) {
      const auto& row = t.rows[i];
      const std::string where = csv + ":" + std::to_string(t.line_of_row[i]);
      const std::string d = Trim(row[dia]), u = Trim(row[uid]);
      if (!AllDigits(d) || !AllDigits(u) || Trim(row[spk]).empty() || Trim(row[emo]).empty()) {
        ES_RETURN_IF_ERROR(sink.Bad(where, "row needs numeric Dialogue_ID/Utterance_ID, a Speaker and an Emotion"));
        continue;
      }
      UtteranceRecord r;
      r.id = split + "_dia" + d + "_utt" + u;
      if (!clips.empty()) {
        r.wav_path = JoinPath(clips, "dia" + d + "_utt" + u + ".wav");
        if (!FileExists(r.wav_path)) {
          // The release ships mp4 clips: say so when that is why, not that the clip is missing.
          const std::string mp4 = JoinPath(clips, "dia" + d + "_utt" + u + ".mp4");
          if (FileExists(mp4))
            return Status::InvalidArgument(mp4 + ": MELD's clips are mp4; convert them to 16 kHz mono wav beside "
                                           "them first (docs/corpora.md, MELD)");
          ES_RETURN_IF_ERROR(sink.Bad(r.wav_path, "clip missing for the row at " + where));
          continue;
        }
      }
      r.speaker = Trim(row[spk]);
      r.session = split;
      r.group = split + "_dia" + d;
      r.original_label = Lower(Trim(row[emo]));
      r.transcript = CleanMeldText(row[utt_col]);
      sink.Add(std::move(r));
    }
  }
  if (found == 0) return Status::NotFound(root + ": no {train,dev,test}_sent_emo.csv (expected the MELD layout)");
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
