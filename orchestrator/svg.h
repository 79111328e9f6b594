// orchestrator/svg.h: the plots of `emosweep report`, drawn as inline SVG.
//
// No plotting library and no external assets: each function returns one
// self-contained <svg> element (viewBox-scaled, so it fits the page width)
// with its own title, axes and labels. Missing values (NaN) are drawn as
// hatched/grey cells or gaps, never as zero.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace emosweep::orchestrator::svg {

std::string Escape(const std::string& text);  // XML/HTML text and attribute escaping

// values[r][c]; NaN = missing. Colour scale from the finite min to max. marks[r][c] (optional) is printed
// after a cell's value (e.g. "*" for a cell with runs missing), and marks_legend under the plot says what
// the marks mean.
std::string Heatmap(const std::string& title, const std::vector<std::string>& row_labels,
                    const std::vector<std::string>& col_labels, const std::vector<std::vector<double>>& values,
                    int decimals, const std::string& row_axis, const std::string& col_axis,
                    const std::vector<std::vector<std::string>>& marks = {}, const std::string& marks_legend = "");

struct Series {
  std::string name;
  std::vector<double> y;     // one per x position; NaN = no point
  std::vector<double> err;   // error bar half-widths (empty = none)
  bool points_only = false;  // markers without a connecting line (e.g. selected epochs)
};
// Categorical x axis (x_labels, evenly spaced), y from the data range.
std::string LinePlot(const std::string& title, const std::string& x_axis, const std::string& y_axis,
                     const std::vector<std::string>& x_labels, const std::vector<Series>& series);

// counts[truth][pred]; cells coloured by row-normalised recall, text = percentage and count.
std::string Confusion(const std::string& title, const std::vector<std::string>& labels,
                      const std::vector<std::vector<int64_t>>& counts);

}  // namespace emosweep::orchestrator::svg
