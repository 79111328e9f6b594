// jobs/metrics.cc: metrics from a confusion matrix (conventions in metrics.h).
#include "jobs/metrics.h"

#include <cmath>
#include <limits>
#include <string>

namespace emosweep::jobs {

ClassificationMetrics MetricsFromConfusion(const std::vector<std::vector<int64_t>>& confusion) {
  ClassificationMetrics m;
  m.confusion = confusion;
  const size_t c = confusion.size();
  std::vector<int64_t> truth(c, 0), predicted(c, 0);
  int64_t correct = 0;
  for (size_t i = 0; i < c; ++i)
    for (size_t j = 0; j < c; ++j) {
      truth[i] += confusion[i][j];
      predicted[j] += confusion[i][j];
      m.n += confusion[i][j];
      if (i == j) correct += confusion[i][j];
    }
  m.per_class_recall.assign(c, std::numeric_limits<double>::quiet_NaN());
  double recall_sum = 0, f1_sum = 0, weighted_f1 = 0;
  int present_truth = 0, present_any = 0;
  for (size_t k = 0; k < c; ++k) {
    const double tp = static_cast<double>(confusion[k][k]);
    if (truth[k] > 0) {
      m.per_class_recall[k] = tp / truth[k];
      recall_sum += m.per_class_recall[k];
      ++present_truth;
    }
    if (truth[k] == 0 && predicted[k] == 0) continue;
    ++present_any;
    // F1 = 2TP / (|truth| + |pred|): 0 when the class lacks either side, as sklearn's zero_division.
    const double f1 = 2.0 * tp / static_cast<double>(truth[k] + predicted[k]);
    f1_sum += f1;
    weighted_f1 += f1 * static_cast<double>(truth[k]);
  }
  if (m.n > 0) {
    m.wa = static_cast<double>(correct) / m.n;
    m.weighted_f1 = weighted_f1 / m.n;
  }
  if (present_truth > 0) m.ua = recall_sum / present_truth;
  if (present_any > 0) m.macro_f1 = f1_sum / present_any;
  return m;
}

Result<ClassificationMetrics> ComputeMetrics(const std::vector<int>& labels, const std::vector<int>& preds,
                                             int num_classes) {
  if (labels.size() != preds.size())
    return Status::InvalidArgument("metrics: " + std::to_string(labels.size()) + " labels but " +
                                   std::to_string(preds.size()) + " predictions");
  if (num_classes <= 0) return Status::InvalidArgument("metrics: need at least one class");
  std::vector<std::vector<int64_t>> confusion(num_classes, std::vector<int64_t>(num_classes, 0));
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes || preds[i] < 0 || preds[i] >= num_classes)
      return Status::InvalidArgument("metrics: row " + std::to_string(i) + " has label " + std::to_string(labels[i]) +
                                     " / prediction " + std::to_string(preds[i]) + " outside [0, " +
                                     std::to_string(num_classes) + ")");
    ++confusion[labels[i]][preds[i]];
  }
  return MetricsFromConfusion(confusion);
}

nlohmann::json ClassificationMetrics::ToJson(bool with_confusion) const {
  nlohmann::json recall = nlohmann::json::array();
  for (double r : per_class_recall) recall.push_back(std::isnan(r) ? nlohmann::json(nullptr) : nlohmann::json(r));
  nlohmann::json j = {{"n", n},   {"ua", ua},           {"wa", wa}, {"macro_f1", macro_f1},
                      {"weighted_f1", weighted_f1}, {"per_class_recall", recall}};
  if (with_confusion) j["confusion"] = confusion;
  return j;
}

double ClassificationMetrics::Get(const std::string& name) const {
  if (name == "ua") return ua;
  if (name == "wa") return wa;
  if (name == "macro_f1") return macro_f1;
  if (name == "weighted_f1") return weighted_f1;
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace emosweep::jobs
