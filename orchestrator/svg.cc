// orchestrator/svg.cc: see svg.h.
#include "orchestrator/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <sstream>

namespace emosweep::orchestrator::svg {
namespace {

struct Rgb {
  double r, g, b;
};

// Viridis, sampled at 5 anchors: perceptually ordered and colour-blind safe.
Rgb Viridis(double t) {
  static const Rgb kStops[] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  t = std::clamp(t, 0.0, 1.0) * 4;
  int i = std::min(3, static_cast<int>(t));
  double f = t - i;
  const Rgb& a = kStops[i];
  const Rgb& b = kStops[i + 1];
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

std::string Hex(const Rgb& c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", static_cast<int>(c.r), static_cast<int>(c.g), static_cast<int>(c.b));
  return buf;
}

bool Dark(const Rgb& c) { return 0.299 * c.r + 0.587 * c.g + 0.114 * c.b < 140; }

std::string Fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  // A value that rounds to zero prints as 0, never as "-0.00" (a tick at -1e-17).
  std::string out = buf;
  if (out[0] == '-' && out.find_first_not_of("-0.") == std::string::npos) out.erase(0, 1);
  return out;
}

// Tick values: about `n` round numbers covering [lo, hi].
std::vector<double> Ticks(double lo, double hi, int n) {
  double span = hi - lo;
  if (span <= 0) return {lo};
  double raw = span / n, mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag * (raw / mag < 1.5 ? 1 : raw / mag < 3 ? 2 : raw / mag < 7 ? 5 : 10);
  std::vector<double> out;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push_back(v);
  return out;
}

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string Open(int w, int h, const std::string& title) {
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << w << " " << h << "\" width=\"" << w
    << "\" style=\"max-width:100%;height:auto;font-family:sans-serif\" role=\"img\" aria-label=\"" << Escape(title)
    << "\"><text x=\"" << w / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">"
    << Escape(title) << "</text>";
  return o.str();
}

}  // namespace

std::string Escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string Heatmap(const std::string& title, const std::vector<std::string>& rows,
                    const std::vector<std::string>& cols, const std::vector<std::vector<double>>& values,
                    int decimals, const std::string& row_axis, const std::string& col_axis,
                    const std::vector<std::vector<std::string>>& marks, const std::string& marks_legend) {
  size_t label_len = 4;
  for (const auto& r : rows) label_len = std::max(label_len, r.size());
  const int left = 30 + static_cast<int>(std::min<size_t>(label_len, 28) * 7), top = 60, cell_w = 78, cell_h = 34;
  const int w = std::max(360, left + static_cast<int>(cols.size()) * cell_w + 20);
  const int h = top + static_cast<int>(rows.size()) * cell_h + (marks_legend.empty() ? 40 : 56);
  // One pattern id per plot (a page holds several heatmaps; ids must be unique in a document).
  char hatch[32];
  std::snprintf(hatch, sizeof hatch, "hatch%016zx", std::hash<std::string>()(title));
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& r : values)
    for (double v : r)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
  std::ostringstream o;
  o << Open(w, h, title);
  o << "<defs><pattern id=\"" << hatch << "\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
       "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#bbb\" stroke-width=\"2\"/>"
       "</pattern></defs>";
  o << "<text x=\"" << left + static_cast<int>(cols.size()) * cell_w / 2 << "\" y=\"38\" text-anchor=\"middle\" "
       "font-size=\"12\" fill=\"#444\">" << Escape(col_axis) << "</text>";
  o << "<text x=\"12\" y=\"" << top + static_cast<int>(rows.size()) * cell_h / 2
    << "\" font-size=\"12\" fill=\"#444\" transform=\"rotate(-90 12 " << top + static_cast<int>(rows.size()) * cell_h / 2
    << ")\" text-anchor=\"middle\">" << Escape(row_axis) << "</text>";
  for (size_t c = 0; c < cols.size(); ++c)
    o << "<text x=\"" << left + static_cast<int>(c) * cell_w + cell_w / 2 << "\" y=\"" << top - 6
      << "\" text-anchor=\"middle\" font-size=\"11\">" << Escape(cols[c]) << "</text>";
  for (size_t r = 0; r < rows.size(); ++r) {
    int y = top + static_cast<int>(r) * cell_h;
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + cell_h / 2 + 4 << "\" text-anchor=\"end\" font-size=\"11\">"
      << Escape(rows[r]) << "</text>";
    for (size_t c = 0; c < cols.size(); ++c) {
      int x = left + static_cast<int>(c) * cell_w;
      double v = c < values[r].size() ? values[r][c] : NAN;
      if (!std::isfinite(v)) {
        o << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell_w - 2 << "\" height=\"" << cell_h - 2
          << "\" fill=\"url(#" << hatch << ")\" stroke=\"#ddd\"/><title>" << Escape(rows[r] + " / " + cols[c]) << ": missing</title>";
        continue;
      }
      Rgb color = Viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5);
      o << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell_w - 2 << "\" height=\"" << cell_h - 2
        << "\" fill=\"" << Hex(color) << "\"><title>" << Escape(rows[r] + " / " + cols[c]) << ": "
        << Fmt(v, decimals + 2) << "</title></rect><text x=\"" << x + cell_w / 2 - 1 << "\" y=\"" << y + cell_h / 2 + 4
        << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"" << (Dark(color) ? "#fff" : "#000") << "\">"
        << Fmt(v, decimals) << (r < marks.size() && c < marks[r].size() ? Escape(marks[r][c]) : "") << "</text>";
    }
  }
  if (std::isfinite(lo))
    o << "<text x=\"" << left << "\" y=\"" << h - 12 << "\" font-size=\"10\" fill=\"#666\">colour: "
      << Fmt(lo, decimals) << " (dark) to " << Fmt(hi, decimals) << " (light); hatched = missing</text>";
  if (!marks_legend.empty())
    o << "<text x=\"" << left << "\" y=\"" << h - 28 << "\" font-size=\"10\" fill=\"#666\">" << Escape(marks_legend)
      << "</text>";
  o << "</svg>";
  return o.str();
}

std::string LinePlot(const std::string& title, const std::string& x_axis, const std::string& y_axis,
                     const std::vector<std::string>& x_labels, const std::vector<Series>& series) {
  const int w = 560, h = 340, left = 60, right = 150, top = 34, bottom = 50;
  const int pw = w - left - right, ph = h - top - bottom;
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : series)
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      double e = i < s.err.size() && std::isfinite(s.err[i]) ? s.err[i] : 0;
      lo = std::min(lo, s.y[i] - e);
      hi = std::max(hi, s.y[i] + e);
    }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
  double pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  size_t nx = std::max<size_t>(1, x_labels.size());
  // Inset the first and last points so markers and error bars clear the frame.
  const double inset = 14;
  auto X = [&](size_t i) {
    return left + (nx == 1 ? pw / 2.0 : inset + (pw - 2 * inset) * static_cast<double>(i) / (nx - 1));
  };
  auto Y = [&](double v) { return top + ph * (1 - (v - lo) / (hi - lo)); };
  std::ostringstream o;
  o << Open(w, h, title);
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>";
  for (double t : Ticks(lo, hi, 5)) {
    o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(t) << "\" y2=\"" << Y(t)
      << "\" stroke=\"#eee\"/><text x=\"" << left - 6 << "\" y=\"" << Y(t) + 4
      << "\" text-anchor=\"end\" font-size=\"10\">" << Fmt(t, std::fabs(hi - lo) < 5 ? 2 : 1) << "</text>";
  }
  size_t every = std::max<size_t>(1, nx / 12);
  for (size_t i = 0; i < x_labels.size(); i += every)
    o << "<text x=\"" << X(i) << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\" font-size=\"10\">"
      << Escape(x_labels[i]) << "</text>";
  o << "<text x=\"" << left + pw / 2 << "\" y=\"" << h - 12 << "\" text-anchor=\"middle\" font-size=\"12\">"
    << Escape(x_axis) << "</text><text x=\"14\" y=\"" << top + ph / 2 << "\" font-size=\"12\" transform=\"rotate(-90 14 "
    << top + ph / 2 << ")\" text-anchor=\"middle\">" << Escape(y_axis) << "</text>";
  for (size_t k = 0; k < series.size(); ++k) {
    const auto& s = series[k];
    const char* color = kPalette[k % 8];
    std::string path;
    for (size_t i = 0; i < s.y.size() && i < nx; ++i) {
      if (!std::isfinite(s.y[i])) continue;
      char seg[64];
      std::snprintf(seg, sizeof seg, "%s%.1f %.1f ", path.empty() ? "M" : "L", X(i), Y(s.y[i]));
      path += seg;
      if (i < s.err.size() && std::isfinite(s.err[i]) && s.err[i] > 0)
        o << "<line x1=\"" << X(i) << "\" x2=\"" << X(i) << "\" y1=\"" << Y(s.y[i] - s.err[i]) << "\" y2=\""
          << Y(s.y[i] + s.err[i]) << "\" stroke=\"" << color << "\" stroke-width=\"1.5\"/>";
      o << "<circle cx=\"" << X(i) << "\" cy=\"" << Y(s.y[i]) << "\" r=\"" << (s.points_only ? 6 : 3)
        << "\" fill=\"" << (s.points_only ? "none" : color) << "\" stroke=\"" << color << "\"><title>"
        << Escape(s.name) << " @ " << Escape(i < x_labels.size() ? x_labels[i] : "") << ": " << Fmt(s.y[i], 3)
        << "</title></circle>";
    }
    if (!path.empty() && !s.points_only) o << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"2\"/>";
    int ly = top + 10 + static_cast<int>(k) * 18;
    o << "<line x1=\"" << left + pw + 12 << "\" x2=\"" << left + pw + 30 << "\" y1=\"" << ly << "\" y2=\"" << ly
      << "\" stroke=\"" << color << "\" stroke-width=\"3\"/><text x=\"" << left + pw + 34 << "\" y=\"" << ly + 4
      << "\" font-size=\"11\">" << Escape(s.name.size() > 18 ? s.name.substr(0, 17) + "…" : s.name) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

std::string Confusion(const std::string& title, const std::vector<std::string>& labels,
                      const std::vector<std::vector<int64_t>>& counts) {
  size_t n = labels.size();
  const int left = 90, top = 62, cell = 56;
  const int w = std::max(300, left + static_cast<int>(n) * cell + 20), h = top + static_cast<int>(n) * cell + 30;
  std::ostringstream o;
  o << Open(w, h, title);
  o << "<text x=\"" << left + static_cast<int>(n) * cell / 2 << "\" y=\"38\" text-anchor=\"middle\" font-size=\"11\" "
       "fill=\"#444\">predicted</text><text x=\"14\" y=\"" << top + static_cast<int>(n) * cell / 2
    << "\" font-size=\"11\" fill=\"#444\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
    << top + static_cast<int>(n) * cell / 2 << ")\">true</text>";
  for (size_t c = 0; c < n; ++c)
    o << "<text x=\"" << left + static_cast<int>(c) * cell + cell / 2 << "\" y=\"" << top - 6
      << "\" text-anchor=\"middle\" font-size=\"11\">" << Escape(labels[c]) << "</text>";
  for (size_t r = 0; r < n; ++r) {
    int64_t total = 0;
    for (size_t c = 0; c < n && r < counts.size() && c < counts[r].size(); ++c) total += counts[r][c];
    int y = top + static_cast<int>(r) * cell;
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + cell / 2 + 4 << "\" text-anchor=\"end\" font-size=\"11\">"
      << Escape(labels[r]) << "</text>";
    for (size_t c = 0; c < n; ++c) {
      int64_t v = r < counts.size() && c < counts[r].size() ? counts[r][c] : 0;
      double frac = total > 0 ? static_cast<double>(v) / total : NAN;
      int x = left + static_cast<int>(c) * cell;
      Rgb color = std::isfinite(frac) ? Viridis(frac) : Rgb{220, 220, 220};
      o << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"" << cell - 2 << "\" height=\"" << cell - 2
        << "\" fill=\"" << Hex(color) << "\"/><text x=\"" << x + cell / 2 - 1 << "\" y=\"" << y + cell / 2
        << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"" << (Dark(color) ? "#fff" : "#000") << "\">"
        << (std::isfinite(frac) ? Fmt(100 * frac, 0) + "%" : "–") << "</text><text x=\"" << x + cell / 2 - 1
        << "\" y=\"" << y + cell / 2 + 14 << "\" text-anchor=\"middle\" font-size=\"9\" fill=\""
        << (Dark(color) ? "#ddd" : "#333") << "\">" << v << "</text>";
    }
  }
  o << "</svg>";
  return o.str();
}

}  // namespace emosweep::orchestrator::svg
