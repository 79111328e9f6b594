// MELD adapter: <root>/{train,dev,test}_sent_emo.csv (columns Utterance,
// Speaker, Emotion, Dialogue_ID, Utterance_ID, ...) plus, when present, clips
// dia<D>_utt<U>.wav in a per-split folder: <split>/, <split>_wav/, or the
// official names train_splits/, dev_splits_complete/,
// output_repeated_splits_test/. Ids are "<split>_dia<D>_utt<U>"; session =
// split; group = "<split>_dia<D>" (the dialogue); transcript = Utterance.
// When no clip folder exists for a split its records are text-only
// (wav_path ""), which a text-only import (--features tfidf) accepts; a clip
// folder that lacks a listed clip is a bad file.
#include <vector>

#include "core/files.h"
#include "data/adapters/builtin.h"
#include "data/adapters/scan_util.h"

namespace emosweep::data::adapters {
namespace {

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
          ES_RETURN_IF_ERROR(sink.Bad(r.wav_path, "clip missing for the row at " + where));
          continue;
        }
      }
      r.speaker = Trim(row[spk]);
      r.session = split;
      r.group = split + "_dia" + d;
      r.original_label = Lower(Trim(row[emo]));
      r.transcript = row[utt_col];
      sink.Add(std::move(r));
    }
  }
  if (found == 0) return Status::NotFound(root + ": no {train,dev,test}_sent_emo.csv (expected the MELD layout)");
  return Status::Ok();
}

}  // namespace emosweep::data::adapters
