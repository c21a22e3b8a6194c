// tests/runtime/test_soak.cpp — long runs through the embedding API: a training and a sampling pipeline
// side by side in two threads for thousands of ticks, each bitwise what it gives alone; and a training
// run's resident memory flat from tick 1,000 to tick 10,000.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "noiseflow/noiseflow.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;

namespace {

std::string example(const char* name) { return std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/" + name; }

struct TrainResult {
  std::vector<float> losses;
  std::vector<std::vector<float>> weights;
};

TrainResult train(const std::string& checkpoint, int64_t steps) {
  Options o;
  o.threads = 1;
  o.params = {{"steps", steps}, {"batch", 64}, {"checkpoint", checkpoint}, {"checkpoint_every", 100}};
  Pipeline p(example("toy2d_train.json"), o);
  TrainResult r;
  p.run([&](const TickInfo&) { r.losses.push_back(p.output("loss")[0]); });
  for (auto& prm : p.executor().params()) r.weights.push_back(prm.value.to_vector());
  return r;
}

std::vector<float> sample(const std::string& checkpoint) {
  Options o;
  o.threads = 1;
  o.params = {{"checkpoint", checkpoint}, {"n", 256}};
  Pipeline p(example("toy2d_sample.json"), o);
  p.run();
  return p.output("step").to_vector();
}

// Resident set size in bytes (/proc/self/statm).
int64_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident * int64_t(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("a training and a sampling pipeline in two threads for thousands of ticks each equal their solo runs") {
  test::TempDir dir;
  const std::string model = dir / "model.safetensors";
  train(model, 50);  // the sampler's weights

  const TrainResult solo_train = train(dir / "solo.safetensors", 2000);
  const std::vector<float> solo_samples = sample(model);
  REQUIRE(solo_train.losses.size() == 2000);
  CHECK(solo_train.losses.back() < solo_train.losses.front());  // it trains

  TrainResult side_train;
  std::vector<std::vector<float>> side_samples(10);
  std::thread t([&] { side_train = train(dir / "side.safetensors", 2000); });
  for (auto& s : side_samples) s = sample(model);  // 10 x 100 ticks while the training runs
  t.join();
  CHECK(side_train.losses == solo_train.losses);
  CHECK(side_train.weights == solo_train.weights);
  for (const auto& s : side_samples) CHECK(s == solo_samples);
}

#ifndef NOISEFLOW_SANITIZED  // ASan's shadow memory and quarantine make RSS meaningless
TEST_CASE("a training run's resident memory does not grow from tick 1,000 to tick 10,000") {
  test::TempDir dir;
  Options o;
  o.threads = 1;
  o.params = {{"steps", 10000}, {"batch", 64}, {"checkpoint", dir / "ck.safetensors"}, {"checkpoint_every", 500}};
  Pipeline p(example("toy2d_train.json"), o);
  int64_t at1000 = 0, at10000 = 0;
  p.run([&](const TickInfo& t) {
    if (t.tick + 1 == 1000) at1000 = rss_bytes();
    if (t.tick + 1 == 10000) at10000 = rss_bytes();
  });
  MESSAGE("RSS at tick 1,000: ", at1000 / 1024, " KiB, at tick 10,000: ", at10000 / 1024, " KiB");
  REQUIRE(at1000 > 0);
  // A leak of 32 bytes per tick would be 288 KB here.
  CHECK(at10000 - at1000 < 256 * 1024);
}
#endif
