// tools/make_scripted_model.cc: writes a TorchScript model file without Python, for
// `model = "torchscript"` (docs/models.md): the concat_mlp architecture or the gated
// fusion of examples/byo_model/model.py (models/torchscript_reference.h). Its
// parameters are placeholders: emosweep re-initialises them per seed.
//   make_scripted_model --out FILE --dims audio=32,text=32 --classes 4
//                       [--arch concat_mlp|gated_fusion] [--hidden 384,192] [--dropout 0.3]
// Exit 2 on bad arguments (message on stderr), 1 when the file cannot be written.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "models/torchscript_reference.h"

namespace {

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "make_scripted_model: %s\nusage: make_scripted_model --out FILE --dims audio=32,text=32 --classes 4 "
               "[--arch concat_mlp|gated_fusion] [--hidden 384,192] [--dropout 0.3]\n",
               why.c_str());
  return 2;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

bool ParseInt(const std::string& s, int64_t* v) {
  char* end = nullptr;
  *v = std::strtoll(s.c_str(), &end, 10);
  return !s.empty() && *end == '\0' && *v > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a = {{"--arch", "concat_mlp"}, {"--hidden", "384,192"}, {"--dropout", "0.3"}};
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (!a.count(k) && k != "--out" && k != "--dims" && k != "--classes") return Usage("unknown option " + k);
    if (i + 1 >= argc) return Usage(k + " needs a value");
    a[k] = argv[i + 1];
  }
  for (const char* req : {"--out", "--dims", "--classes"})
    if (!a.count(req)) return Usage(std::string(req) + " is required");
  std::map<std::string, int64_t> dims;
  for (const auto& d : Split(a["--dims"])) {
    const size_t eq = d.find('=');
    int64_t v = 0;
    if (eq == std::string::npos || eq == 0 || !ParseInt(d.substr(eq + 1), &v))
      return Usage("--dims: '" + d + "' is not modality=positive integer");
    dims[d.substr(0, eq)] = v;
  }
  if (dims.empty()) return Usage("--dims names no modality");
  int64_t classes = 0;
  if (!ParseInt(a["--classes"], &classes) || classes < 2) return Usage("--classes must be an integer >= 2");
  std::vector<int64_t> hidden;
  for (const auto& h : Split(a["--hidden"])) {
    int64_t v = 0;
    if (!ParseInt(h, &v)) return Usage("--hidden: '" + h + "' is not a positive integer");
    hidden.push_back(v);
  }
  char* end = nullptr;
  const double dropout = std::strtod(a["--dropout"].c_str(), &end);
  if (*end != '\0' || !(dropout >= 0 && dropout < 1)) return Usage("--dropout must be in [0, 1)");
  emosweep::Status st;
  if (a["--arch"] == "concat_mlp") {
    st = emosweep::models::SaveScriptedConcatMlp(a["--out"], dims, hidden, dropout, classes);
  } else if (a["--arch"] == "gated_fusion") {
    if (hidden.size() != 1) return Usage("--arch gated_fusion takes one --hidden width");
    st = emosweep::models::SaveScriptedGatedFusion(a["--out"], dims, hidden[0], dropout, classes);
  } else {
    return Usage("--arch must be concat_mlp or gated_fusion");
  }
  if (!st.ok()) {
    std::fprintf(stderr, "make_scripted_model: %s\n", st.message().c_str());
    return 1;
  }
  std::printf("%s\n", a["--out"].c_str());
  return 0;
}
