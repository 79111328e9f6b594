// jobs/identity.cc: the job identity's canonical bytes, hashed piece by piece,
// with an optional cache of the hasher's state after the leading keys
// (jobs/identity.h).
#include "jobs/identity.h"

#include <cstdint>

namespace emosweep::jobs {
namespace {

// Bump when the meaning of a job's JSON changes (docs/formats/ledger.md).
constexpr int kIdentityVersion = 1;

// Feeds the canonical bytes to the hash in pieces: the small parts through one buffer,
// the utterance-id lists straight from an interned list's kept serialisation.
class IdentityWriter {
 public:
  std::string& buf() { return buf_; }
  Sha256& sha() { return sha_; }
  void Flush() {
    sha_.Update(buf_);
    buf_.clear();
  }
  // [{"corpus_hash":...,"ids":[...]}, ...]: the identity's view of data (no store path).
  void Refs(const std::vector<DataRef>& refs) {
    buf_.push_back('[');
    for (size_t r = 0; r < refs.size(); ++r) {
      if (r) buf_.push_back(',');
      buf_.append("{\"corpus_hash\":");
      AppendJsonString(&buf_, static_cast<const std::string&>(refs[r].corpus_hash));
      buf_.append(",\"ids\":");
      Flush();
      sha_.Update(refs[r].ids.CanonicalJson(&scratch_));
      buf_.push_back('}');
    }
    buf_.push_back(']');
  }
  std::string Finish() {
    Flush();
    return sha_.HexDigest();
  }

 private:
  Sha256 sha_;
  std::string buf_, scratch_;
};

void AppendField(std::string* key, std::string_view s) {
  const uint64_t n = s.size();
  key->append(reinterpret_cast<const char*>(&n), sizeof n).append(s);
}

// What the leading bytes (adapt, eval, features) are made of, with each eval list named
// by its address; false when a non-empty eval list is not interned (no stable name).
bool LeadingKey(const JobSpec& spec, std::string_view features, std::string* key) {
  std::string adapt;
  spec.adapt.AppendDump(&adapt);
  AppendField(key, adapt);
  AppendField(key, features);
  for (const auto& [name, refs] : spec.eval) {
    AppendField(key, name);
    const uint64_t n = refs.size();
    key->append(reinterpret_cast<const char*>(&n), sizeof n);
    for (const auto& r : refs) {
      if (!r.ids.empty() && !r.ids.interned()) return false;
      AppendField(key, static_cast<const std::string&>(r.corpus_hash));
      const void* list = r.ids.shared();
      key->append(reinterpret_cast<const char*>(&list), sizeof list);
    }
  }
  return true;
}

}  // namespace

// The bytes hashed are exactly HashJson({"identity_version": v, "job": ToJson() without
// every data reference's "store"}) (keys sorted, compact), written directly: building
// that JSON tree for thousands of utterance ids per job dominated protocol expansion
// (issue 15). Interned configs and id lists keep their serialisation, so the bytes of
// what many jobs share are made once and streamed into the hash without a copy.
// tests/jobs/job_identity_test.cc checks both agree; identity_cache_test.cc that the
// cached midstates give the same ids.
std::string ComputeJobId(const JobSpec& spec, IdentityCache* cache) {
  IdentityWriter w;
  std::string& out = w.buf();
  out.reserve(1024);
  std::string features_scratch;
  const std::string_view features = spec.features.CanonicalJson(&features_scratch);
  std::string key;
  bool cacheable = cache && LeadingKey(spec, features, &key);
  const IdentityCache::Entry* hit = nullptr;
  if (cacheable) {
    auto it = cache->entries_.find(key);
    if (it != cache->entries_.end()) hit = &it->second;
  }
  if (hit) {
    w.sha().CopyStateFrom(*hit->state);
    ++cache->hits_;
  } else {
    out.append("{\"identity_version\":").append(std::to_string(kIdentityVersion)).append(",\"job\":{\"adapt\":");
    spec.adapt.AppendDump(&out);
    out.append(",\"eval\":{");
    bool first = true;
    for (const auto& [name, refs] : spec.eval) {
      if (!first) out.push_back(',');
      first = false;
      AppendJsonString(&out, name);
      out.push_back(':');
      w.Refs(refs);
    }
    out.append("},\"features\":").append(features);
    if (cacheable) {
      w.Flush();
      ++cache->misses_;
      if (cache->entries_.size() >= cache->max_entries_) cache->entries_.clear();
      IdentityCache::Entry e;
      e.state = std::make_unique<Sha256>();
      e.state->CopyStateFrom(w.sha());
      for (const auto& [name, refs] : spec.eval)
        for (const auto& r : refs) e.held.push_back(r.ids);
      cache->entries_.emplace(std::move(key), std::move(e));
    }
  }
  out.append(",\"init_from\":");
  AppendJsonString(&out, spec.init_from.view());
  out.append(",\"keep_checkpoint\":").append(spec.keep_checkpoint ? "true" : "false");
  out.append(",\"kind\":");
  AppendJsonString(&out, spec.kind.str());
  out.append(",\"labels\":");
  std::string labels_scratch;
  out.append(spec.labels.CanonicalJson(&labels_scratch));
  out.append(",\"model\":");
  spec.model.AppendDump(&out);
  out.append(",\"oracle_eval\":");
  AppendJsonString(&out, spec.oracle_eval.str());
  out.append(",\"seed\":").append(std::to_string(spec.seed));
  out.append(",\"selection\":");
  AppendJsonString(&out, spec.selection.str());
  out.append(",\"target_unlabeled\":");
  w.Refs(spec.target_unlabeled);
  out.append(",\"train\":");
  w.Refs(spec.train);
  out.append(",\"train_config\":");
  spec.train_config.AppendDump(&out);
  out.append(",\"val\":");
  w.Refs(spec.val);
  out.append("}}");
  return w.Finish();
}

}  // namespace emosweep::jobs
