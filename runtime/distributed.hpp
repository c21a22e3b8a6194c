// runtime/distributed.hpp — the processes of a data-parallel run and the collectives it needs.
//
//   rank 0 ─┐                       ┌─ same averaged gradients, bit for bit, on every rank
//   rank 1 ─┼─ allreduce_mean ──────┼─ (a ring in fixed rank order, not MPI's choice of algorithm)
//   rank 2 ─┘                       └─ so every rank's optimizer makes the same step
//
// A Communicator is one process (LocalCommunicator) or, in a build with MPI (NOISEFLOW_MPI) started by
// mpirun, the ranks of MPI_COMM_WORLD. The executor averages gradients through it between the backward
// and the optimizer (ExecutionPlan::allreduce) and broadcasts rank 0's weights before the first tick; a
// sampling run's dist.gather nodes collect every rank's slice of the samples on rank 0 (gather).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace noiseflow::runtime {

/// The ranks of a data-parallel run.
class Communicator {
 public:
  virtual ~Communicator() = default;
  /// This process's rank, 0 .. size() - 1.
  virtual int rank() const = 0;
  /// The number of ranks.
  virtual int size() const = 0;
  /// Replaces data[0, n) on every rank by its mean over the ranks. The sums run in an order fixed by the
  /// rank count (a ring reduce-scatter, then an all-gather), so every rank gets the same bits and repeated
  /// runs with the same count are bitwise identical.
  virtual void allreduce_mean(float* data, int64_t n) = 0;
  /// Copies `bytes` bytes at `data` from rank `root` to every rank.
  virtual void broadcast(void* data, int64_t bytes, int root = 0) = 0;
  /// Rank 0 receives every rank's `n` floats at `send`, concatenated in rank order, into `recv` (size() x n
  /// floats; written on rank 0 only). `channel` tells gathers apart (the same number on every rank, e.g. a
  /// hash of the node id; two channels must not share a message tag: std::runtime_error). A rank other than
  /// 0 does not wait for rank 0: `send` is copied and its message completes in the background (before the
  /// next gather on that channel, or at exit), so ranks may meet several gathers in different orders.
  virtual void gather(const float* send, int64_t n, float* recv, uint64_t channel) = 0;
  /// Ends every rank of the run (after a rank's error, so that no other waits for it); does not return.
  [[noreturn]] virtual void abort(int code) = 0;
  /// "1 process" or "Open MPI, 4 ranks", for messages.
  virtual std::string describe() const = 0;
};

/// One process alone: the collectives do nothing.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_mean(float*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  void gather(const float* send, int64_t n, float* recv, uint64_t) override;
  [[noreturn]] void abort(int code) override;
  std::string describe() const override { return "1 process"; }
};

/// Whether this build has MPI (NOISEFLOW_MPI).
bool mpi_built();
/// Whether this process was started by an MPI launcher (mpirun sets OMPI_COMM_WORLD_SIZE / PMI_SIZE).
bool launched_by_mpi();
/// The communicator of this process: MPI's world when built with MPI and started by mpirun (MPI is
/// initialised on the first call and finalised at exit), else a LocalCommunicator. Started by mpirun
/// without MPI in the build, each process would run alone: that is an error (std::runtime_error).
std::shared_ptr<Communicator> world();

namespace detail {
/// The ring allreduce over any point-to-point transport: `exchange(to, send, from, recv, n)` sends n
/// floats to rank `to` while receiving n floats from rank `from`. Sums into data, then scales by 1 / size.
/// `scratch` holds at least n / size + 1 floats.
template <class Exchange>
void ring_allreduce_mean(float* data, int64_t n, int rank, int size, float* scratch, Exchange&& exchange) {
  if (size <= 1 || n <= 0) return;
  auto begin = [&](int c) { return n * c / size; };
  auto count = [&](int c) { return begin(c + 1) - begin(c); };
  auto mod = [&](int v) { return ((v % size) + size) % size; };
  const int next = mod(rank + 1), prev = mod(rank - 1);
  // Reduce-scatter: at step s rank r passes on its partial sum of chunk r - s and adds rank r - 1's partial
  // sum of chunk r - s - 1 to its own; after size - 1 steps it holds the full sum of chunk r + 1.
  for (int s = 0; s < size - 1; ++s) {
    const int send_c = mod(rank - s), recv_c = mod(rank - s - 1);
    exchange(next, data + begin(send_c), count(send_c), prev, scratch, count(recv_c));
    float* d = data + begin(recv_c);
    for (int64_t i = 0, m = count(recv_c); i < m; ++i) d[i] = scratch[i] + d[i];
  }
  // All-gather: pass the finished chunks around the ring; every rank ends with the same bits.
  for (int s = 0; s < size - 1; ++s) {
    const int send_c = mod(rank + 1 - s), recv_c = mod(rank - s);
    exchange(next, data + begin(send_c), count(send_c), prev, data + begin(recv_c), count(recv_c));
  }
  const float scale = 1.0f / float(size);
  for (int64_t i = 0; i < n; ++i) data[i] *= scale;
}
}  // namespace detail

}  // namespace noiseflow::runtime
