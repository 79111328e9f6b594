// orchestrator/table_render.cc: Markdown, LaTeX, CSV and JSON for tables,
// reproduce checks and paired comparisons.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "orchestrator/tables.h"

namespace emosweep::orchestrator {
namespace {

std::string Fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string Num(double v) {  // CSV: enough digits to round-trip what matters
  if (!std::isfinite(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

nlohmann::json JsonNum(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char ch : s) out += ch == '"' ? "\"\"" : std::string(1, ch);
  return out + "\"";
}

// Text for pdflatex with the default font encoding (OT1) and inputenc utf8: TeX's specials escaped, the
// symbols the captions and cells use in math mode (OT1 has no <, >, | glyphs in text).
std::string Latex(const std::string& s) {
  static const std::pair<const char*, const char*> kSymbols[] = {
      {"±", "$\\pm$"}, {"—", "---"}, {"–", "--"}, {"†", "$^\\dagger$"}, {"‡", "$^\\ddagger$"},
      {"×", "$\\times$"}, {"≥", "$\\geq$"}, {"≤", "$\\leq$"}, {"≠", "$\\neq$"}, {"≈", "$\\approx$"},
      {"→", "$\\rightarrow$"}, {"->", "$\\rightarrow$"}, {"←", "$\\leftarrow$"}, {"−", "$-$"},
      {"·", "$\\cdot$"}, {"…", "\\ldots{}"}, {"Δ", "$\\Delta$"}, {"α", "$\\alpha$"}, {"σ", "$\\sigma$"},
      {"μ", "$\\mu$"}, {"°", "$^\\circ$"}, {"<", "$<$"}, {">", "$>$"}, {"|", "$|$"}};
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    bool symbol = false;
    for (const auto& [from, to] : kSymbols) {
      const size_t n = std::char_traits<char>::length(from);
      if (s.compare(i, n, from) == 0) {
        out += to;
        i += n - 1;
        symbol = true;
        break;
      }
    }
    if (symbol) continue;
    if (ch == '"') {  // TeX quotes: opening after a space or bracket or at the start, closing otherwise
      const bool opening = out.empty() || std::isspace(static_cast<unsigned char>(out.back())) ||
                           out.back() == '(' || out.back() == '[';
      out += opening ? "``" : "''";
      continue;
    }
    switch (ch) {
      case '&': case '%': case '$': case '#': case '_': case '{': case '}':
        out += '\\';
        out += ch;
        break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      case '\\': out += "\\textbackslash{}"; break;
      default: out += ch;
    }
  }
  return out;
}

// A \label key: TeX reads it verbatim into the .aux file, so no escapes; letters, digits, '-', ':' and
// '.' are kept, anything else becomes '-' (`tab:in_domain` -> `tab:in-domain`).
std::string LatexLabel(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) out += std::isalnum(ch) || ch == '-' || ch == ':' || ch == '.' ? static_cast<char>(ch) : '-';
  return out;
}

// A Markdown table cell: '|' escaped (it would split the cell), '<' escaped (GitHub renders raw HTML),
// line breaks as spaces (they would end the row).
std::string Md(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|' || ch == '<') out += '\\';
    out += ch == '\n' || ch == '\r' ? ' ' : ch;
  }
  return out;
}

std::string ColumnHeader(const TableData& t, size_t c, size_t m) {
  if (t.spec.metrics.size() == 1) return t.cols[c];
  return t.cols[c] + " " + MetricLabel(t.spec.metrics[m]);
}

}  // namespace

std::string SelectedGridPoints(const TableData& t) {
  if (!t.spec.HasGridSelection()) return "";
  std::string out;
  for (size_t r = 0; r < t.rows.size(); ++r)
    for (size_t c = 0; c < t.cols.size(); ++c) {
      const TableCell& cell = t.at(r, c, 0);
      if (!cell.selected.empty())
        out += (out.empty() ? "" : "; ") + t.rows[r] + " / " + t.cols[c] + ": " + cell.selected;
    }
  std::string rules;
  for (const auto& r : t.spec.GridRules()) rules += (rules.empty() ? "" : ", ") + r;
  return out.empty() ? "" : "Selected grid points (" + rules + "): " + out + ".";
}

namespace {

std::string SelectedPoints(const TableData& t) {
  const std::string s = SelectedGridPoints(t);
  return s.empty() ? s : "\n" + s + "\n";
}

std::string Markdown(const TableData& t) {
  std::ostringstream o;
  size_t nm = t.spec.metrics.size();
  o << "| " << Md(t.spec.rows);
  for (size_t c = 0; c < t.cols.size(); ++c)
    for (size_t m = 0; m < nm; ++m) o << " | " << Md(ColumnHeader(t, c, m));
  o << " |\n|---";
  for (size_t k = 0; k < t.cols.size() * nm; ++k) o << "|---:";
  o << "|\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    o << "| " << Md(t.rows[r]);
    for (size_t c = 0; c < t.cols.size(); ++c)
      for (size_t m = 0; m < nm; ++m) {
        const TableCell& cell = t.at(r, c, m);
        std::string text = CellText(t, cell);
        o << " | " << (cell.best ? "**" + text + "**" : text);
      }
    o << " |\n";
  }
  o << "\nTable: " << t.spec.name << ". " << t.caption << "\n";
  o << SelectedPoints(t);
  return o.str();
}

std::string LatexTable(const TableData& t) {
  std::ostringstream o;
  size_t nm = t.spec.metrics.size();
  o << "\\begin{table}[t]\n\\centering\n\\caption{" << Latex(t.caption) << "}\n\\label{tab:" << LatexLabel(t.spec.name)
    << "}\n\\begin{tabular}{l" << std::string(t.cols.size() * nm, 'c') << "}\n\\toprule\n" << Latex(t.spec.rows);
  for (size_t c = 0; c < t.cols.size(); ++c)
    for (size_t m = 0; m < nm; ++m) o << " & " << Latex(ColumnHeader(t, c, m));
  o << " \\\\\n\\midrule\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    o << Latex(t.rows[r]);
    for (size_t c = 0; c < t.cols.size(); ++c)
      for (size_t m = 0; m < nm; ++m) {
        const TableCell& cell = t.at(r, c, m);
        std::string text = Latex(CellText(t, cell));
        o << " & " << (cell.best ? "\\textbf{" + text + "}" : text);
      }
    o << " \\\\\n";
  }
  o << "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
  // The grid points the cells report, as a comment: kept with the table, not printed in the paper.
  const std::string selected = SelectedPoints(t);
  if (!selected.empty()) {
    std::string line = selected.substr(1, selected.size() - 2);
    std::replace(line.begin(), line.end(), '\n', ' ');
    o << "% " << line << "\n";
  }
  return o.str();
}

std::string Csv(const TableData& t) {
  std::ostringstream o;
  o << kTableCsvHeader << "\n";
  for (size_t r = 0; r < t.rows.size(); ++r)
    for (size_t c = 0; c < t.cols.size(); ++c)
      for (size_t m = 0; m < t.spec.metrics.size(); ++m) {
        const TableCell& cell = t.at(r, c, m);
        o << CsvField(t.spec.name) << "," << CsvField(t.rows[r]) << "," << CsvField(t.cols[c]) << ","
          << t.spec.metrics[m] << "," << Num(cell.summary.mean) << "," << Num(cell.summary.Spread(t.spec.spread))
          << "," << t.spec.spread << "," << cell.values.size() << "," << cell.planned << ","
          << (cell.complete() ? 1 : 0) << "," << (cell.provisional ? 1 : 0) << "," << (cell.best ? 1 : 0) << ","
          << CsvField(cell.selected) << "\n";
      }
  return o.str();
}

}  // namespace

nlohmann::json TableJson(const TableData& t) {
  nlohmann::json cells = nlohmann::json::array();
  for (size_t r = 0; r < t.rows.size(); ++r)
    for (size_t c = 0; c < t.cols.size(); ++c)
      for (size_t m = 0; m < t.spec.metrics.size(); ++m) {
        const TableCell& cell = t.at(r, c, m);
        nlohmann::json ids = nlohmann::json::array(), values = nlohmann::json::array();
        for (const auto* j : cell.jobs) ids.push_back(j->spec.id);
        for (double v : cell.values) values.push_back(v);
        cells.push_back({{"row", t.rows[r]},
                         {"column", t.cols[c]},
                         {"metric", t.spec.metrics[m]},
                         {"mean", JsonNum(cell.summary.mean)},
                         {"spread", JsonNum(cell.summary.Spread(t.spec.spread))},
                         {"n", cell.values.size()},
                         {"planned", cell.planned},
                         {"best", cell.best},
                         {"complete", cell.complete()},
                         {"selected", cell.selected},
                         {"provisional", cell.provisional},
                         {"text", CellText(t, cell)},
                         {"values", values},
                         {"jobs", ids}});
      }
  std::vector<std::string> experiments = t.spec.experiments;
  if (experiments.empty() && !t.spec.experiment.empty()) experiments = {t.spec.experiment};
  return {{"name", t.spec.name},
          {"caption", t.caption},
          {"experiments", experiments},
          {"rows_attr", t.spec.rows},
          {"row_attrs", t.spec.row_attrs.empty() ? std::vector<std::string>{t.spec.rows} : t.spec.row_attrs},
          {"average_column", t.average_col >= 0 ? nlohmann::json(t.cols[t.average_col]) : nlohmann::json()},
          {"best_test", {{"test", "paired t (two-sided)"}, {"alpha", t.spec.alpha}, {"matched_on", t.spec.aggregate_over}}},
          {"grid_selection", t.spec.grid_selection},
          {"grid_selection_by", t.spec.grid_selection_by},
          {"columns_attr", t.spec.columns},
          {"rows", t.rows},
          {"columns", t.cols},
          {"metrics", t.spec.metrics},
          {"eval", t.spec.eval},
          {"spread", t.spec.spread},
          {"scale", t.spec.scale},
          {"seeds", t.seeds},
          {"selection", t.selections},
          {"oracle", t.selections.count("oracle") > 0},
          {"planned_jobs", t.planned_jobs},
          {"finished_jobs", t.finished_jobs},
          {"cells", cells}};
}

Result<std::string> RenderTable(const TableData& t, const std::string& format) {
  if (format == "markdown" || format == "md") return Markdown(t);
  if (format == "latex" || format == "tex") return LatexTable(t);
  if (format == "csv") return Csv(t);
  if (format == "json") return TableJson(t).dump(2) + "\n";
  return Status::InvalidArgument("unknown --format '" + format + "' (markdown, latex, csv, json)");
}

Result<std::string> RenderReproduce(const TableData& t, const std::vector<ReproduceLine>& lines,
                                    const std::string& format) {
  int within = 0, have = 0, incomplete = 0;
  for (const auto& l : lines) within += l.within, have += l.have_ours, incomplete += l.have_ours && !l.complete;
  int d = t.spec.decimals;
  std::string tol = Fixed(t.spec.tolerance, d);
  std::ostringstream o;
  if (format == "json") {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& l : lines)
      a.push_back({{"row", l.row}, {"column", l.col}, {"metric", l.metric},
                   {"ours", l.have_ours ? JsonNum(l.ours) : nlohmann::json()}, {"published", l.published},
                   {"diff", l.have_ours ? JsonNum(l.diff) : nlohmann::json()}, {"n", l.n}, {"planned", l.planned},
                   {"complete", l.complete}, {"within", l.within}});
    return nlohmann::json{{"table", t.spec.name}, {"tolerance", t.spec.tolerance}, {"cells", a},
                          {"within", within}, {"compared", have}, {"incomplete", incomplete},
                          {"published", lines.size()}}
               .dump(2) + "\n";
  }
  if (format == "csv") {
    o << "table,row,column,metric,ours,published,diff,n,planned,complete,within\n";
    for (const auto& l : lines)
      o << CsvField(t.spec.name) << "," << CsvField(l.row) << "," << CsvField(l.col) << "," << l.metric << ","
        << (l.have_ours ? Num(l.ours) : "") << "," << Num(l.published) << "," << (l.have_ours ? Num(l.diff) : "")
        << "," << l.n << "," << l.planned << "," << (l.complete ? 1 : 0) << "," << (l.within ? 1 : 0) << "\n";
    return o.str();
  }
  if (format != "markdown" && format != "md" && format != "latex" && format != "tex")
    return Status::InvalidArgument("unknown --format '" + format + "'");
  // LaTeX users get the check as Markdown too: it is a lab note, not a paper table.
  o << "| " << Md(t.spec.rows) << " | " << Md(t.spec.columns) << " | metric | ours | published | diff | within ±" << tol
    << " |\n|---|---|---|---:|---:|---:|---|\n";
  for (const auto& l : lines)
    o << "| " << Md(l.row) << " | " << Md(l.col) << " | " << MetricLabel(l.metric) << " | "
      << (l.have_ours ? l.cell : t.spec.missing) << " | " << Fixed(l.published, d) << " | "
      << (l.have_ours ? (l.diff >= 0 ? "+" : "") + Fixed(l.diff, d) : "") << " | "
      << (!l.have_ours ? "missing" : !l.complete ? "incomplete" : l.within ? "yes" : "NO") << " |\n";
  o << "\nReproduce " << t.spec.name << ": " << within << " of " << lines.size()
    << " published cells within ±" << tol << " (" << (lines.size() - have) << " without a finished run";
  if (incomplete) o << ", " << incomplete << " with runs missing: not compared until complete";
  o << "). ours: mean ± " << (SpreadLabel(t.spec.spread).ok() ? *SpreadLabel(t.spec.spread) : t.spec.spread)
    << " over the cell's runs; the tolerance is absolute and does not widen with the spread.\n";
  return o.str();
}

Result<std::string> RenderCompare(const TableData& t, const CompareOptions& opt, const std::vector<CompareLine>& lines,
                                  const std::string& format) {
  double s = t.spec.scale;
  int d = t.spec.decimals;
  std::string note = "Paired " + opt.test + " test of " + opt.a + " vs " + opt.b + " on the '" + t.spec.eval +
                     "' set: utterances matched by id within job pairs matched on (" + t.spec.aggregate_over +
                     "); metric computed per pair and averaged; two-sided p with " + std::to_string(opt.resamples) +
                     " resamples, seed " + std::to_string(opt.seed) + "; utterances: matched predictions summed over "
                     "the job pairs (an utterance counts once per pair); one p per column, uncorrected for the number "
                     "of columns and metrics.";
  if (format == "json") {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& l : lines) {
      nlohmann::json j = {{"column", l.col}, {"metric", l.metric}, {"pairs", l.pairs}};
      if (l.note.empty())
        j.update({{"a", l.result.a * s}, {"b", l.result.b * s}, {"delta", l.result.delta * s},
                  {"p_value", l.result.p_value}, {"utterances", l.result.n_items}});
      else
        j["note"] = l.note;
      a.push_back(j);
    }
    return nlohmann::json{{"a", opt.a}, {"b", opt.b}, {"test", opt.test}, {"resamples", opt.resamples},
                          {"seed", opt.seed}, {"note", note}, {"cells", a}}
               .dump(2) + "\n";
  }
  std::ostringstream o;
  auto p_text = [](double p) {
    char buf[32];
    std::snprintf(buf, sizeof buf, p < 0.001 ? "%.1e" : "%.3f", p);
    return std::string(buf);
  };
  if (format == "csv") {
    o << "column,metric,a,b,delta,p_value,pairs,utterances,note\n";
    for (const auto& l : lines)
      o << CsvField(l.col) << "," << l.metric << "," << (l.note.empty() ? Num(l.result.a * s) : "") << ","
        << (l.note.empty() ? Num(l.result.b * s) : "") << "," << (l.note.empty() ? Num(l.result.delta * s) : "")
        << "," << (l.note.empty() ? Num(l.result.p_value) : "") << "," << l.pairs << "," << l.result.n_items << ","
        << CsvField(l.note) << "\n";
    return o.str();
  }
  bool tex = format == "latex" || format == "tex";
  if (!tex && format != "markdown" && format != "md") return Status::InvalidArgument("unknown --format '" + format + "'");
  if (tex) {
    o << "\\begin{tabular}{llrrrrr}\n\\toprule\n" << Latex(t.spec.columns) << " & metric & " << Latex(opt.a)
      << " & " << Latex(opt.b) << " & $\\Delta$ & $p$ & pairs \\\\\n\\midrule\n";
  } else {
    o << "| " << Md(t.spec.columns) << " | metric | " << Md(opt.a) << " | " << Md(opt.b)
      << " | Δ | p | pairs | utterances |\n"
      << "|---|---|---:|---:|---:|---:|---:|---:|\n";
  }
  for (const auto& l : lines) {
    bool ok = l.note.empty();
    std::string a = ok ? Fixed(l.result.a * s, d) : "", b = ok ? Fixed(l.result.b * s, d) : "";
    std::string delta = ok ? (l.result.delta >= 0 ? "+" : "") + Fixed(l.result.delta * s, d) : "";
    std::string p = ok ? p_text(l.result.p_value) : l.note;
    if (tex)
      o << Latex(l.col) << " & " << Latex(MetricLabel(l.metric)) << " & " << a << " & " << b << " & " << delta
        << " & " << Latex(p) << " & " << l.pairs << " \\\\\n";
    else
      o << "| " << Md(l.col) << " | " << MetricLabel(l.metric) << " | " << a << " | " << b << " | " << delta << " | " << p
        << " | " << l.pairs << " | " << l.result.n_items << " |\n";
  }
  if (tex)
    o << "\\bottomrule\n\\end{tabular}\n% " << note << "\n";
  else
    o << "\n" << note << "\n";
  return o.str();
}

}  // namespace emosweep::orchestrator
