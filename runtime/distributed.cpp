#include "runtime/distributed.hpp"

#include <chrono>
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifdef NOISEFLOW_MPI
#include <mpi.h>
#endif

namespace noiseflow::runtime {

void LocalCommunicator::abort(int code) { std::_Exit(code); }

void LocalCommunicator::gather(const float* send, int64_t n, float* recv, uint64_t) {
  if (send != recv) std::copy_n(send, n, recv);
}

bool mpi_built() {
#ifdef NOISEFLOW_MPI
  return true;
#else
  return false;
#endif
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

#ifdef NOISEFLOW_MPI
namespace {

// Seconds a rank waits for a peer's message before it gives up on the run (NOISEFLOW_MPI_TIMEOUT, default
// 300): mpirun normally ends the job within a second of a rank's death; this covers launchers that do not.
double peer_timeout() {
  const char* v = std::getenv("NOISEFLOW_MPI_TIMEOUT");
  const double t = v ? std::atof(v) : 0.0;
  return t > 0 ? t : 300.0;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    // Collectives come from the main thread (broadcast) and from a flow-graph task (allreduce), never
    // at once.
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (provided < MPI_THREAD_SERIALIZED) {
      std::fprintf(stderr, "noiseflow: the MPI library gives thread level %d, below MPI_THREAD_SERIALIZED\n", provided);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    timeout_ = peer_timeout();
  }
  ~MpiCommunicator() override {
    // A gather's last messages from this rank: rank 0 took them within their tick; complete the requests.
    for (auto& [tag, g] : gathers_)
      if (g.pending) wait({g.request}, "sending samples to rank 0");
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_mean(float* data, int64_t n) override {
    scratch_.resize(size_t(n / size_ + 2));
    detail::ring_allreduce_mean(data, n, rank_, size_, scratch_.data(),
                                [&](int to, const float* send, int64_t sn, int from, float* recv, int64_t rn) {
                                  exchange(to, send, sn, from, recv, rn);
                                });
  }

  void broadcast(void* data, int64_t bytes, int root) override {
    // Binomial tree rooted at `root` with point-to-point messages, in 1 GB pieces, under the peer timeout.
    auto* p = static_cast<char*>(data);
    for (int64_t off = 0; off < bytes; off += kPiece) {
      const int n = int(std::min<int64_t>(kPiece, bytes - off));
      const int me = (rank_ - root + size_) % size_;
      int mask = 1;
      while (mask < size_) {
        if (me & mask) {
          const int src = (me - mask + root) % size_;
          MPI_Request r;
          serial([&] { MPI_Irecv(p + off, n, MPI_BYTE, src, kTag, MPI_COMM_WORLD, &r); });
          wait({r}, "receiving rank " + std::to_string(src) + "'s weights");
          break;
        }
        mask <<= 1;
      }
      for (mask >>= 1; mask > 0; mask >>= 1)
        if (me + mask < size_) {
          const int dst = (me + mask + root) % size_;
          MPI_Request r;
          serial([&] { MPI_Isend(p + off, n, MPI_BYTE, dst, kTag, MPI_COMM_WORLD, &r); });
          wait({r}, "sending the weights to rank " + std::to_string(dst));
        }
    }
  }

  void gather(const float* send, int64_t n, float* recv, uint64_t channel) override {
    // Point-to-point messages on a tag of the channel's own, so that gathers met in different orders on
    // different ranks (a flow graph schedules by readiness; rank 0 runs sinks the others skip) never take
    // each other's messages: rank 0 receives from every rank, the others send without waiting.
    const int tag = kGatherTagBase + int(channel % uint64_t(kGatherTags));
    Gather& g = [&]() -> Gather& {
      std::lock_guard lock(gathers_m_);  // std::map keeps references valid across inserts
      return gathers_[tag];
    }();
    if (g.channel_set && g.channel != channel)
      throw std::runtime_error("two gathers share message tag " + std::to_string(tag) +
                               " (a hash collision of their node ids): rename one of the dist.gather nodes");
    g.channel = channel;
    g.channel_set = true;
    if (n > INT_MAX) throw std::length_error("gather of more than 2^31 floats per rank");
    if (rank_ == 0) {
      if (send != recv) std::copy_n(send, n, recv);
      std::vector<MPI_Request> reqs(size_t(size_ - 1));
      for (int r = 1; r < size_; ++r)
        serial([&] { MPI_Irecv(recv + int64_t(r) * n, int(n), MPI_FLOAT, r, tag, MPI_COMM_WORLD, &reqs[size_t(r - 1)]); });
      wait(std::move(reqs), "gathering the samples of every rank");
      return;
    }
    if (g.pending) wait({g.request}, "sending samples to rank 0");
    g.pending = false;
    g.buffer.assign(send, send + n);
    serial([&] { MPI_Isend(g.buffer.data(), int(n), MPI_FLOAT, 0, tag, MPI_COMM_WORLD, &g.request); });
    g.pending = true;
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }
  std::string describe() const override {
    return "MPI, " + std::to_string(size_) + (size_ == 1 ? " rank" : " ranks");
  }

 private:
  static constexpr int kTag = 7117;
  static constexpr int64_t kPiece = int64_t(1) << 30;
  // Gathers take tags [kGatherTagBase, kGatherTagBase + kGatherTags): MPI guarantees tags up to 32767.
  static constexpr int kGatherTagBase = 8192, kGatherTags = 24000;

  // One gather channel: this rank's copy of its last slice while its message is under way (ranks > 0).
  struct Gather {
    uint64_t channel = 0;
    bool channel_set = false, pending = false;
    MPI_Request request = MPI_REQUEST_NULL;
    std::vector<float> buffer;
  };

  // MPI_THREAD_SERIALIZED: one MPI call at a time in the process. Gathers may run in flow-graph tasks
  // beside each other (flow_threads > 1), so every call (and every poll) takes this lock; a wait releases
  // it between polls, so a gather waiting for a rank never holds up another.
  template <class F>
  void serial(F&& f) {
    std::lock_guard lock(mpi_m_);
    f();
  }

  void exchange(int to, const float* send, int64_t sn, int from, float* recv, int64_t rn) {
    if (sn > INT_MAX || rn > INT_MAX) throw std::length_error("allreduce chunk above 2^31 floats");
    MPI_Request r[2];
    serial([&] {
      MPI_Irecv(recv, int(rn), MPI_FLOAT, from, kTag, MPI_COMM_WORLD, &r[0]);
      MPI_Isend(send, int(sn), MPI_FLOAT, to, kTag, MPI_COMM_WORLD, &r[1]);
    });
    wait({r[0], r[1]}, "exchanging gradients with ranks " + std::to_string(from) + " and " + std::to_string(to));
  }

  // Waits for the requests; after timeout_ seconds without completion the peer is taken for dead and the
  // whole run ends with a message saying so (never a silent hang).
  void wait(std::vector<MPI_Request> reqs, const std::string& what) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int spins = 0;; ++spins) {
      int done = 0;
      serial([&] { MPI_Testall(int(reqs.size()), reqs.data(), &done, MPI_STATUSES_IGNORE); });
      if (done) return;
      if (spins > 1000) std::this_thread::yield();
      if ((spins & 1023) == 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_) {
        std::fprintf(stderr,
                     "\nnoiseflow: rank %d: no progress for %.0f s %s (NOISEFLOW_MPI_TIMEOUT); a rank has died or "
                     "hangs: ending the run (resume from the last checkpoint with --resume)\n",
                     rank_, timeout_, what.c_str());
        abort(1);
      }
    }
  }

  int rank_ = 0, size_ = 1;
  double timeout_ = 300;
  std::vector<float> scratch_;
  std::mutex mpi_m_;
  std::mutex gathers_m_;
  std::map<int, Gather> gathers_;
};

}  // namespace
#endif

std::shared_ptr<Communicator> world() {
  static std::mutex m;
  static std::shared_ptr<Communicator> w;
  std::lock_guard lock(m);
  if (w) return w;
#ifdef NOISEFLOW_MPI
  if (launched_by_mpi()) return w = std::make_shared<MpiCommunicator>();
#else
  if (launched_by_mpi()) {
    const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (n && std::atoi(n) > 1)
      throw std::runtime_error(
          "noiseflow: started by mpirun with " + std::string(n) +
          " processes, but this build has no MPI (install libopenmpi-dev, tools/setup.sh, and rebuild): each "
          "process would train alone");
  }
#endif
  return w = std::make_shared<LocalCommunicator>();
}

}  // namespace noiseflow::runtime
