// cluster/communicator_inproc.cc: ranks as threads of one process (tests, world of one).
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "cluster/communicator.h"

namespace emosweep::cluster {
namespace {

struct Mailboxes {
  explicit Mailboxes(int n) : boxes(static_cast<size_t>(n)) {}
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::deque<Message>> boxes;  // per destination rank
};

class InProcCommunicator final : public Communicator {
 public:
  InProcCommunicator(std::shared_ptr<Mailboxes> m, int rank, int size) : m_(std::move(m)), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "inproc"; }

  Status Send(int dest, int tag, const std::string& payload) override {
    if (dest < 0 || dest >= size_) return Status::InvalidArgument("send to rank " + std::to_string(dest) + " of " + std::to_string(size_));
    {
      std::lock_guard<std::mutex> lock(m_->mu);
      m_->boxes[static_cast<size_t>(dest)].push_back(Message{rank_, tag, payload});
    }
    m_->cv.notify_all();
    return Status::Ok();
  }

  Result<std::optional<Message>> Recv(int source, int tag, double timeout_s) override {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    std::unique_lock<std::mutex> lock(m_->mu);
    auto& box = m_->boxes[static_cast<size_t>(rank_)];
    while (true) {
      for (auto it = box.begin(); it != box.end(); ++it) {
        if ((source == kAnySource || it->source == source) && (tag == kAnyTag || it->tag == tag)) {
          Message msg = std::move(*it);
          box.erase(it);
          return std::optional<Message>(std::move(msg));
        }
      }
      if (m_->cv.wait_until(lock, deadline) == std::cv_status::timeout) {
        // One last scan happens on the next loop iteration only if woken; on timeout, report nothing.
        for (auto it = box.begin(); it != box.end(); ++it) {
          if ((source == kAnySource || it->source == source) && (tag == kAnyTag || it->tag == tag)) {
            Message msg = std::move(*it);
            box.erase(it);
            return std::optional<Message>(std::move(msg));
          }
        }
        return std::optional<Message>();
      }
    }
  }

  void Abort(int exit_code, const std::string& why) override {
    (void)exit_code;
    aborted_ = why;  // in-process: the caller's test inspects the outcome; nothing to kill
  }

  std::string host() const override {
    char buf[256] = "localhost";
    gethostname(buf, sizeof buf - 1);
    return buf;
  }

 private:
  std::shared_ptr<Mailboxes> m_;
  int rank_, size_;
  std::string aborted_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> MakeInProcWorld(int n) {
  auto m = std::make_shared<Mailboxes>(n);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<InProcCommunicator>(m, r, n));
  return out;
}

}  // namespace emosweep::cluster
