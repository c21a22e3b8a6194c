// tests/runtime/exec/test_embedding.cpp — two pipelines in one process: each executor runs in a task
// arena of its own, so two of them in two threads with different thread counts give what each gives
// alone; and the caller's OpenMP thread count is left as it was.
#include <doctest/doctest.h>

#include <omp.h>

#include <thread>

#include "noiseflow/noiseflow.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;

namespace {

// A small convolutional training run: the weights after 8 Adam steps.
const char* kTrain = R"({ "noiseflow": 1, "nodes": {
    "x":    { "op": "random.normal", "attrs": { "shape": [8, 16, 12, 12] } },
    "a":    { "op": "nn.conv2d", "inputs": { "x": "x" }, "attrs": { "out_channels": 32 } },
    "s":    { "op": "nn.group_norm", "inputs": { "x": "a" }, "attrs": { "groups": 8, "activation": "silu" } },
    "b":    { "op": "nn.conv2d", "inputs": { "x": "s" }, "attrs": { "out_channels": 16 } },
    "loss": { "op": "loss.mse", "inputs": { "pred": "b", "target": "x" } },
    "opt":  { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.01 } } },
  "run": { "ticks": 8, "seed": 3 } })";

std::vector<std::vector<float>> train(const std::string& path, int threads, int flow_threads) {
  Options o;
  o.threads = threads;
  o.flow_threads = flow_threads;
  Pipeline p(path, o);
  p.run();
  std::vector<std::vector<float>> w;
  for (auto& prm : p.executor().params()) w.push_back(prm.value.to_vector());
  return w;
}

}  // namespace

TEST_CASE("two pipelines in two threads with different thread counts give the same weights as each alone") {
  test::TempDir dir;
  const std::string path = dir.write("train.json", kTrain);
  const auto alone1 = train(path, 1, 1);
  const auto alone2 = train(path, 2, 2);
  std::vector<std::vector<float>> both1, both2;
  std::thread t1([&] { both1 = train(path, 1, 1); });
  std::thread t2([&] { both2 = train(path, 2, 2); });
  t1.join();
  t2.join();
  REQUIRE(alone1.size() == 6);  // two convolutions and the group norm, weight and bias each
  CHECK(both1 == alone1);
  CHECK(both2 == alone2);
}

TEST_CASE("running a pipeline leaves the caller's OpenMP thread count as it was") {
  test::TempDir dir;
  const std::string path = dir.write("train.json", kTrain);
  omp_set_num_threads(1);
  Options o;
  o.threads = 2;
  Pipeline p(path, o);
  p.step();
  CHECK(omp_get_max_threads() == 1);
  p.run();
  CHECK(omp_get_max_threads() == 1);
  omp_set_num_threads(omp_get_num_procs());
}

TEST_CASE("Pipeline::from_text runs a document's text as the file would run, its includes shown to check_include") {
  noiseflow::test::TempDir dir;
  dir.write("train.json", kTrain);
  Options o;
  o.threads = 2;
  Pipeline from_file((dir / "train.json"), o);
  from_file.run();
  Pipeline from_text = Pipeline::from_text(kTrain, (dir / "other.json"), o);  // need not exist
  CHECK(from_text.graph().file == (dir / "other.json"));
  from_text.run();
  REQUIRE(from_file.executor().params().size() == from_text.executor().params().size());
  for (size_t i = 0; i < from_file.executor().params().size(); ++i)
    CHECK(from_file.executor().params()[i].value.to_vector() == from_text.executor().params()[i].value.to_vector());
  // An include the caller refuses is a path_refused diagnostic; one it allows is read relative to `path`.
  dir.write("sub.json", R"({ "noiseflow": 1, "outputs": { "y": "n" },
    "nodes": { "n": { "op": "random.normal", "attrs": { "shape": [2, 3] } } } })");
  const std::string with_include = R"({ "noiseflow": 1, "include": { "s": "sub.json" }, "nodes": {}, "run": { "ticks": 1 } })";
  o.check_include = [](const std::string& file) { return file.find("sub.json") != std::string::npos ? "not here" : ""; };
  try {
    Pipeline::from_text(with_include, (dir / "p.json"), o);
    FAIL("the refused include loaded");
  } catch (const GraphError& e) {
    REQUIRE(!e.diagnostics.empty());
    CHECK(e.diagnostics[0].code == "path_refused");
    CHECK(e.diagnostics[0].message.find("not here") != std::string::npos);
  }
  o.check_include = nullptr;
  try {
    Pipeline::from_text(with_include, (dir / "p.json"), o);
  } catch (const GraphError& e) {
    for (auto& d : e.diagnostics) CHECK_MESSAGE(d.code != "path_refused", d.str());
  }
}
