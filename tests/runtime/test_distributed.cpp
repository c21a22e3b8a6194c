// tests/runtime/test_distributed.cpp — data parallelism without MPI: the ring allreduce, slices of the
// random streams, batch slicing at load time, and whole training runs with one executor per rank in
// threads of this process (a Communicator over in-memory mailboxes). tests/tools/test_mpi.cpp runs the
// same under mpirun.
#include <doctest/doctest.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/distributed.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/random.hpp"
#include "runtime/safetensors.hpp"
#include "tests/test_util.hpp"

namespace {

using namespace noiseflow;
using runtime::Communicator;

// Messages between ranks that are threads of this process.
class Mailboxes {
 public:
  void post(int from, int to, std::vector<char> bytes, uint64_t tag = 0) {
    std::lock_guard lock(m_);
    boxes_[{from, to, tag}].push_back(std::move(bytes));
    cv_.notify_all();
  }
  std::vector<char> take(int from, int to, uint64_t tag = 0) {
    std::unique_lock lock(m_);
    auto& q = boxes_[{from, to, tag}];
    cv_.wait(lock, [&] { return !q.empty(); });
    std::vector<char> b = std::move(q.front());
    q.pop_front();
    return b;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::map<std::tuple<int, int, uint64_t>, std::deque<std::vector<char>>> boxes_;
};

// A rank of a run whose ranks are threads: the ring of runtime/distributed.hpp over the mailboxes.
class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(Mailboxes& boxes, int rank, int size) : boxes_(boxes), rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_mean(float* data, int64_t n) override {
    std::vector<float> scratch(size_t(n / size_ + 2));
    runtime::detail::ring_allreduce_mean(
        data, n, rank_, size_, scratch.data(), [&](int to, const float* send, int64_t sn, int from, float* recv, int64_t rn) {
          const auto* p = reinterpret_cast<const char*>(send);
          boxes_.post(rank_, to, std::vector<char>(p, p + sn * 4));
          std::vector<char> got = boxes_.take(from, rank_);
          REQUIRE(int64_t(got.size()) == rn * 4);
          if (!got.empty()) std::memcpy(recv, got.data(), got.size());  // a chunk may be empty (n < size)
        });
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    if (rank_ == root) {
      const auto* p = static_cast<const char*>(data);
      for (int r = 0; r < size_; ++r)
        if (r != root) boxes_.post(root, r, std::vector<char>(p, p + bytes));
    } else {
      std::vector<char> got = boxes_.take(root, rank_);
      REQUIRE(int64_t(got.size()) == bytes);
      std::memcpy(data, got.data(), got.size());
    }
  }
  void gather(const float* send, int64_t n, float* recv, uint64_t channel) override {
    const auto* p = reinterpret_cast<const char*>(send);
    if (rank_ != 0) return boxes_.post(rank_, 0, std::vector<char>(p, p + n * 4), channel + 1);
    std::memmove(recv, send, size_t(n) * 4);
    for (int r = 1; r < size_; ++r) {
      std::vector<char> got = boxes_.take(r, 0, channel + 1);
      REQUIRE(int64_t(got.size()) == n * 4);
      std::memcpy(recv + r * n, got.data(), got.size());
    }
  }
  [[noreturn]] void abort(int) override { throw std::logic_error("abort"); }
  std::string describe() const override { return "threads"; }

 private:
  Mailboxes& boxes_;
  int rank_, size_;
};

// Runs f(rank) in one thread per rank.
template <class F>
void on_ranks(int size, F f) {
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back([&, r] { f(r); });
  for (auto& t : threads) t.join();
}

}  // namespace

TEST_CASE("the ring allreduce gives the mean, the same bits on every rank, for any size and rank count") {
  for (int size : {1, 2, 3, 4, 5})
    for (int64_t n : {int64_t(0), int64_t(1), int64_t(3), int64_t(1000)}) {
      Mailboxes boxes;
      std::vector<std::vector<float>> data(static_cast<size_t>(size));
      for (int r = 0; r < size; ++r)
        for (int64_t i = 0; i < n; ++i) data[size_t(r)].push_back(float(std::sin(double(r * 1000 + i))));
      std::vector<double> want(size_t(n), 0.0);
      for (int r = 0; r < size; ++r)
        for (int64_t i = 0; i < n; ++i) want[size_t(i)] += data[size_t(r)][size_t(i)] / double(size);
      on_ranks(size, [&](int r) {
        ThreadCommunicator c(boxes, r, size);
        c.allreduce_mean(data[size_t(r)].data(), n);
      });
      INFO("ranks ", size, ", n ", n);
      for (int r = 1; r < size; ++r) CHECK(data[size_t(r)] == data[0]);
      for (int64_t i = 0; i < n; ++i) CHECK(std::abs(data[0][size_t(i)] - want[size_t(i)]) < 1e-6);
    }
}

TEST_CASE("fill_normal of a slice draws the elements the whole tensor draws there") {
  std::vector<float> whole(103);
  runtime::random::fill_normal(whole.data(), 103, 42, 7, 0.5f, 2.f);
  for (int64_t first : {0, 1, 2, 3, 4, 5, 50}) {
    std::vector<float> part(size_t(103 - first));
    runtime::random::fill_normal(part.data(), int64_t(part.size()), 42, 7, 0.5f, 2.f, first);
    CHECK(std::memcmp(part.data(), whole.data() + first, part.size() * 4) == 0);
  }
}

TEST_CASE("loaded for N ranks, a data source's batch is the global batch divided by N") {
  auto o = test::load_options();
  const auto one = graph::load_pipeline(NOISEFLOW_SOURCE_DIR "/pipelines/examples/toy2d_train.json", o);
  o.ranks = 4;
  const auto four = graph::load_pipeline(NOISEFLOW_SOURCE_DIR "/pipelines/examples/toy2d_train.json", o);
  const auto& data = four.nodes[size_t(four.find("data"))];
  CHECK(data.output_shapes[0] == graph::Shape{64, 2});
  CHECK(four.ranks == 4);
  // The resolved pipeline (and so the checkpoint's pipeline hash) keeps the global batch: resume with any N.
  CHECK(four.resolved["nodes"]["data"]["attrs"]["batch"] == 256);
  CHECK(four.hash() == one.hash());

  o.ranks = 3;
  try {
    graph::load_pipeline(NOISEFLOW_SOURCE_DIR "/pipelines/examples/toy2d_train.json", o);
    FAIL("256 does not divide by 3");
  } catch (const graph::GraphError& e) {
    REQUIRE(e.diagnostics.size() == 1);
    CHECK(e.diagnostics[0].code == "batch_not_divisible");
    CHECK(e.diagnostics[0].node == "data");
  }
}

TEST_CASE("2 and 4 ranks as threads train what one process trains (toy model, 20 steps)") {
  test::TempDir dir;
  auto o = test::load_options({{"steps", 20}, {"checkpoint_every", 1000}, {"checkpoint", dir / "ck.safetensors"}});
  const auto g1 = graph::load_pipeline(NOISEFLOW_SOURCE_DIR "/pipelines/examples/toy2d_train.json", o);
  runtime::Executor single(g1, {.threads = 1});
  single.run();
  for (int size : {2, 4}) {
    Mailboxes boxes;
    o.ranks = size;
    const auto g = graph::load_pipeline(NOISEFLOW_SOURCE_DIR "/pipelines/examples/toy2d_train.json", o);
    std::vector<std::unique_ptr<runtime::Executor>> ex(static_cast<size_t>(size));
    on_ranks(size, [&](int r) {
      ex[size_t(r)] = std::make_unique<runtime::Executor>(
          g, runtime::ExecutorOptions{.threads = 1, .comm = std::make_shared<ThreadCommunicator>(boxes, r, size)});
      ex[size_t(r)]->run();
    });
    INFO("ranks ", size);
    double worst = 0;
    for (auto& p : single.params()) {
      const runtime::Tensor& want = p.value;
      for (int r = 0; r < size; ++r) {
        const runtime::Tensor& got = ex[size_t(r)]->find_param(p.name)->value;
        if (r > 0) CHECK(test::same_bytes(got, ex[0]->find_param(p.name)->value));  // every rank alike
        double diff = 0, scale = 0;
        for (int64_t i = 0; i < want.numel(); ++i) {
          diff = std::max(diff, double(std::abs(got[i] - want[i])));
          scale = std::max(scale, double(std::abs(want[i])));
        }
        worst = std::max(worst, diff / scale);
      }
    }
    MESSAGE(size, " ranks: largest relative difference of the weights ", worst);
    CHECK(worst <= 1e-5);
    // The logged loss is the global batch's.
    double l1 = 0, l2 = 0;
    single.state().latest("loss", l1);
    ex[0]->state().latest("loss", l2);
    CHECK(l2 == doctest::Approx(l1).epsilon(1e-5));
  }
}

TEST_CASE("the single-process communicator's gather is a copy") {
  runtime::LocalCommunicator c;
  const std::vector<float> x{1.f, -2.f, 3.5f};
  std::vector<float> y(3, 0.f);
  c.gather(x.data(), 3, y.data(), 17);
  CHECK(y == x);
}

TEST_CASE("2 and 4 ranks as threads sample what one process samples (DDPM's ancestral noise, class labels)") {
  // Gaussian data's exact denoiser stands in for a net: the initial noise, every step's ancestral noise and
  // the labels are drawn per sample, each rank its slice; two gathers (met in any order) bring them to rank 0.
  const std::string text = R"({
    "noiseflow": 1, "name": "sample_slices", "params": { "n": 8, "out": "" },
    "nodes": {
      "sched":  { "op": "diffusion.schedule", "attrs": { "kind": "linear", "T": 1000 } },
      "noise":  { "op": "random.normal", "attrs": { "batch": "$n", "shape": [1, 4, 4] } },
      "x":      { "op": "state", "inputs": { "init": "noise", "next": "step.x_next" } },
      "ts":     { "op": "sampler.timesteps", "inputs": { "like": "noise", "schedule": "sched" },
                  "attrs": { "sampler": "ddpm", "steps": 20 } },
      "hist":   { "op": "state", "inputs": { "init": "ts.history", "next": "step.history" } },
      "den":    { "op": "diffusion.gaussian_denoiser", "inputs": { "x": "x", "t": "ts.t", "schedule": "sched" },
                  "attrs": { "mu": 0.5, "sigma": 0.5, "prediction": "eps" } },
      "step":   { "op": "sampler.ddpm", "inputs": { "x": "x", "pred": "den", "t": "ts.t", "points": "ts.points",
                  "history": "hist" }, "attrs": { "prediction": "eps" } },
      "labels": { "op": "data.class_labels", "attrs": { "n": "$n", "num_classes": 3 } },
      "all":    { "op": "dist.gather", "inputs": { "x": "step.x_next" }, "attrs": { "count": "$n" } },
      "all_l":  { "op": "dist.gather", "inputs": { "x": "labels" }, "attrs": { "count": "$n" } },
      "save":   { "op": "io.save_tensor", "inputs": { "x": "all" }, "attrs": { "path": "${out}x.safetensors", "name": "samples" },
                  "at_end": true },
      "save_l": { "op": "io.save_tensor", "inputs": { "x": "all_l" }, "attrs": { "path": "${out}l.safetensors", "name": "labels" },
                  "at_end": true }
    },
    "run": { "ticks": "auto", "seed": 5 }
  })";
  test::TempDir dir;
  auto o = test::load_options({{"out", dir / "one_"}});
  const auto g1 = graph::load_pipeline_text(text, "sample_slices.json", o);
  runtime::Executor(g1, {.threads = 1}).run();
  const auto x1 = runtime::read_safetensors(dir / "one_x.safetensors").tensors.at("samples");
  const auto l1 = runtime::read_safetensors(dir / "one_l.safetensors").tensors.at("labels");
  CHECK(x1.shape() == runtime::Shape{8, 1, 4, 4});
  for (int size : {2, 4}) {
    Mailboxes boxes;
    const std::string prefix = dir / (std::to_string(size) + "_");
    o = test::load_options({{"out", prefix}});
    o.ranks = size;
    const auto g = graph::load_pipeline_text(text, "sample_slices.json", o);
    CHECK(g.nodes[size_t(g.find("noise"))].output_shapes[0] == graph::Shape{8 / size, 1, 4, 4});
    on_ranks(size, [&](int r) {
      runtime::Executor ex(g, {.threads = 1, .comm = std::make_shared<ThreadCommunicator>(boxes, r, size)});
      ex.run();
    });
    INFO("ranks ", size);
    CHECK(test::same_bytes(runtime::read_safetensors(prefix + "x.safetensors").tensors.at("samples"), x1));
    CHECK(test::same_bytes(runtime::read_safetensors(prefix + "l.safetensors").tensors.at("labels"), l1));
  }
  // 8 samples do not split 3 ways: the loader says which node and attribute.
  o.ranks = 3;
  try {
    graph::load_pipeline_text(text, "sample_slices.json", o);
    FAIL("8 does not divide by 3");
  } catch (const graph::GraphError& e) {
    REQUIRE(e.diagnostics.size() == 2);  // labels.n and noise.batch
    for (const auto& d : e.diagnostics) {
      CHECK(d.code == "batch_not_divisible");
      CHECK(((d.node == "noise" && d.field == "attr \"batch\"") || (d.node == "labels" && d.field == "attr \"n\"")));
    }
    CHECK(e.diagnostics[0].node != e.diagnostics[1].node);
  }
}
