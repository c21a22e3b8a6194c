// A training run interrupted and resumed from its checkpoint follows the same
// trajectory, bit for bit, as the uninterrupted run with the same seed.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "noiseflow/noiseflow.hpp"
#include "runtime/checkpoint.hpp"
#include "tests/test_util.hpp"


namespace {
std::string pipeline(const char* name = "toy2d_train.json") {
  return std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/examples/" + name;
}

std::vector<double> run(const std::string& file, noiseflow::Options o) {
  noiseflow::Pipeline p(file, o);
  std::vector<double> l;
  p.run([&](const noiseflow::TickInfo&) {
    double v = 0;
    p.executor().state().latest("loss", v);
    l.push_back(v);
  });
  return l;
}
}  // namespace

TEST_CASE("interrupted and resumed training equals the uninterrupted run bitwise") {
  // The conditional variant also draws its label dropout per tick and sample.
  for (const char* name : {"toy2d_train.json", "toy2d_cond_train.json"}) {
    CAPTURE(name);
    const std::string file = pipeline(name);
    const noiseflow::test::TempDir dir;
    const std::string a = dir / "straight.safetensors", b = dir / "resumed.safetensors";
    noiseflow::Options base;
    base.threads = 2;
    base.params = {{"checkpoint_every", 25}};

    // Uninterrupted: 60 ticks.
    auto straight = base;
    straight.params["checkpoint"] = a;
    straight.ticks = 60;
    std::vector<double> loss_straight = run(file, straight);

    // Interrupted (cancelled) during tick 41, with the last checkpoint at tick 25; then resumed to 60.
    auto first = base;
    first.params["checkpoint"] = b;
    first.ticks = 60;
    {
      noiseflow::Pipeline p(file, first);
      CHECK_THROWS_AS(p.run([&](const noiseflow::TickInfo& t) {
        if (t.tick == 40) p.cancel();
      }),
                      noiseflow::Cancelled);
    }
    auto second = first;
    second.resume = true;
    std::vector<double> loss_resumed;
    {
      noiseflow::Pipeline p(file, second);
      CHECK(p.executor().next_tick() == 25);
      p.run([&](const noiseflow::TickInfo&) {
        double v = 0;
        p.executor().state().latest("loss", v);
        loss_resumed.push_back(v);
      });
    }
    REQUIRE(loss_resumed.size() == 35);
    for (size_t i = 0; i < 35; ++i) {
      INFO("tick " << 25 + i);
      CHECK(loss_resumed[i] == loss_straight[25 + i]);
    }
    // Every tensor of the final checkpoints (weights, Adam moments, EMA) is identical.
    auto sa = noiseflow::runtime::read_safetensors(a), sb = noiseflow::runtime::read_safetensors(b);
    REQUIRE(sa.tensors.size() == sb.tensors.size());
    for (auto& [name, t] : sa.tensors) {
      INFO(name);
      REQUIRE(sb.tensors.count(name));
      CHECK(std::memcmp(t.data(), sb.tensors.at(name).data(), size_t(t.numel()) * 4) == 0);
    }
    CHECK(sa.metadata.at("step") == "60");
  }
}

TEST_CASE("resume without a checkpoint is a clear error") {
  noiseflow::Options o;
  o.params = {{"checkpoint", "/nonexistent/nf/ck.safetensors"}};
  o.resume = true;
  noiseflow::Pipeline p(pipeline(), o);
  CHECK_THROWS_WITH(p.executor(), doctest::Contains("nothing to resume: no checkpoint at /nonexistent/nf/ck.safetensors"));
  // A pipeline with no node that writes checkpoints (Schema::checkpoint_writer) has nothing to resume from.
  noiseflow::test::TempDir dir;
  const std::string file = dir.write("no_checkpoint.json", R"({
    "noiseflow": 1,
    "nodes": { "noise": { "op": "random.normal", "attrs": { "shape": [2, 3] } } },
    "run": { "ticks": 2 }
  })");
  noiseflow::Options none;
  none.resume = true;
  noiseflow::Pipeline q(file, none);
  CHECK_THROWS_WITH(q.executor(), doctest::Contains("--resume needs an io.checkpoint node in the pipeline"));
}
