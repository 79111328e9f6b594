// Do the features carry emotion? A plain softmax regression on EmoDB's
// logmel64_stats + prosody, 4 core classes, speaker-independent 5-fold
// cross-validation (two speakers held out per fold), must reach UA >= 0.50
// (chance 0.25). Needs ../shared; skips with a message otherwise.
#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "data/audio/frontend.h"
#include "audio_test_util.h"

namespace emosweep::data::audio {
namespace {

struct Sample {
  std::string path, speaker;
  int label;
};

// Multinomial logistic regression, full-batch gradient descent with L2; the
// features are standardised with the training fold's mean/std.
std::vector<int> TrainAndPredict(const std::vector<std::vector<float>>& x, const std::vector<int>& y,
                                 const std::vector<size_t>& train, const std::vector<size_t>& test, int classes) {
  const size_t d = x[0].size();
  std::vector<double> mu(d, 0), sd(d, 0);
  for (size_t i : train) for (size_t k = 0; k < d; ++k) mu[k] += x[i][k];
  for (double& m : mu) m /= double(train.size());
  for (size_t i : train) for (size_t k = 0; k < d; ++k) sd[k] += (x[i][k] - mu[k]) * (x[i][k] - mu[k]);
  for (double& s : sd) s = std::sqrt(s / double(train.size())) + 1e-8;
  auto z = [&](size_t i, size_t k) { return (x[i][k] - mu[k]) / sd[k]; };
  std::vector<double> w(size_t(classes) * (d + 1), 0.0), grad(w.size());
  std::vector<double> p(static_cast<size_t>(classes));
  // Class-balanced weights: UA is the target metric.
  std::vector<double> cw(static_cast<size_t>(classes), 0.0);
  for (size_t i : train) cw[size_t(y[i])] += 1;
  for (double& c : cw) c = double(train.size()) / (classes * std::max(1.0, c));
  for (int it = 0; it < 300; ++it) {
    std::fill(grad.begin(), grad.end(), 0.0);
    for (size_t i : train) {
      double mx = -1e30;
      for (int c = 0; c < classes; ++c) {
        double s = w[size_t(c) * (d + 1) + d];
        for (size_t k = 0; k < d; ++k) s += w[size_t(c) * (d + 1) + k] * z(i, k);
        p[size_t(c)] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (double& v : p) sum += (v = std::exp(v - mx));
      for (int c = 0; c < classes; ++c) {
        const double g = cw[size_t(y[i])] * (p[size_t(c)] / sum - (c == y[i] ? 1.0 : 0.0));
        for (size_t k = 0; k < d; ++k) grad[size_t(c) * (d + 1) + k] += g * z(i, k);
        grad[size_t(c) * (d + 1) + d] += g;
      }
    }
    for (size_t j = 0; j < w.size(); ++j) w[j] -= 0.1 * (grad[j] / double(train.size()) + 1e-3 * w[j]);
  }
  std::vector<int> pred;
  for (size_t i : test) {
    int best = 0;
    double best_s = -1e30;
    for (int c = 0; c < classes; ++c) {
      double s = w[size_t(c) * (d + 1) + d];
      for (size_t k = 0; k < d; ++k) s += w[size_t(c) * (d + 1) + k] * z(i, k);
      if (s > best_s) best_s = s, best = c;
    }
    pred.push_back(best);
  }
  return pred;
}

TEST(EmodbUa, SpeakerIndependentFourClassUaAboveHalf) {
  const std::string root = std::string(EMOSWEEP_SHARED_DIR) + "/corpora/emodb";
  std::ifstream csv(root + "/metadata.csv");
  if (!csv) GTEST_SKIP() << "EmoDB not found at " << root << " (needs ../shared)";
  const std::map<std::string, int> classes = {{"anger", 0}, {"happiness", 1}, {"neutral", 2}, {"sadness", 3}};
  std::vector<Sample> samples;
  std::string line;
  std::getline(csv, line);  // header: file,speaker,gender,age,emotion_code,emotion,...
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string c; f.size() < 6 && std::getline(ss, c, ',');) f.push_back(c);
    ASSERT_EQ(f.size(), 6u) << line;
    auto it = classes.find(f[5]);
    if (it != classes.end()) samples.push_back({root + "/" + f[0], f[1], it->second});
  }
  ASSERT_EQ(samples.size(), 127u + 71u + 79u + 62u) << "EmoDB 4-class utterance count";
  std::vector<std::string> paths;
  for (const auto& s : samples) paths.push_back(s.path);
  AudioFeatureOptions o;
  o.feature_sets = {"logmel64_stats", "prosody"};
  o.num_threads = 2;
  auto batch = ExtractAudioFeatures(paths, o, nullptr);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  std::vector<std::vector<float>> x(samples.size());
  std::vector<int> y;
  for (size_t i = 0; i < samples.size(); ++i) {
    for (const auto& fs : batch->sets) x[i].insert(x[i].end(), fs.row(int64_t(i)), fs.row(int64_t(i)) + fs.dim);
    y.push_back(samples[i].label);
  }
  std::vector<std::string> speakers;
  for (const auto& s : samples) speakers.push_back(s.speaker);
  std::sort(speakers.begin(), speakers.end());
  speakers.erase(std::unique(speakers.begin(), speakers.end()), speakers.end());
  ASSERT_EQ(speakers.size(), 10u);
  std::vector<std::array<int, 2>> counts(4, {0, 0});  // per class: [correct, total]
  for (size_t fold = 0; fold < 5; ++fold) {
    const std::set<std::string> held = {speakers[2 * fold], speakers[2 * fold + 1]};
    std::vector<size_t> train, test;
    for (size_t i = 0; i < samples.size(); ++i) (held.count(samples[i].speaker) ? test : train).push_back(i);
    const std::vector<int> pred = TrainAndPredict(x, y, train, test, 4);
    for (size_t j = 0; j < test.size(); ++j) {
      counts[size_t(y[test[j]])][1]++;
      counts[size_t(y[test[j]])][0] += pred[j] == y[test[j]];
    }
  }
  double ua = 0;
  for (const auto& c : counts) ua += double(c[0]) / c[1];
  ua /= 4;
  std::cout << "EmoDB 4-class speaker-independent 5-fold UA = " << ua << " (logmel64_stats + prosody, softmax regression)\n";
  EXPECT_GE(ua, 0.50);
}

}  // namespace
}  // namespace emosweep::data::audio
