// tests/nodes/eval/test_sample_grid.cpp — eval.sample_grid in a tiny training run of an RGB net of its own:
// the grids it writes, and its errors.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <stb/stb_image.h>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/run_state.hpp"
#include "tests/test_util.hpp"

using noiseflow::test::TempDir;
using namespace noiseflow::runtime;
namespace fs = std::filesystem;

namespace {

// A net of two convolutions for [N, C, 8, 12] images (not unet-small: any net works).
const char* kNet = R"({ "noiseflow": 1, "name": "tiny", "params": { "batch": 2, "c": 3 },
  "inputs": { "x": { "shape": ["$batch", "$c", 8, 12] }, "t": { "shape": ["$batch"] } },
  "outputs": { "out": "conv2" },
  "nodes": {
    "conv1": { "op": "nn.conv2d", "inputs": { "x": "x" }, "attrs": { "out_channels": 4 } },
    "conv2": { "op": "nn.conv2d", "inputs": { "x": "conv1" }, "attrs": { "out_channels": "$c" } } } })";

/// A training pipeline of 4 ticks on noise images [4, C, 8, 12] with eval.sample_grid every 2 ticks.
std::string training(const TempDir& dir, int channels, const std::string& preview_attrs) {
  dir.write("tiny.json", kNet);
  const std::string c = std::to_string(channels);
  return dir.write("train.json", R"({ "noiseflow": 1, "name": "tiny_train", "include": { "tiny": "tiny.json" },
    "nodes": {
      "data":  { "op": "random.normal", "attrs": { "shape": [4, )" + c + R"(, 8, 12] } },
      "sched": { "op": "diffusion.schedule", "attrs": { "kind": "linear", "T": 50 } },
      "t":     { "op": "diffusion.timesteps", "inputs": { "like": "data", "schedule": "sched" } },
      "eps":   { "op": "random.normal", "inputs": { "like": "data" } },
      "xt":    { "op": "diffusion.add_noise", "inputs": { "x0": "data", "noise": "eps", "t": "t", "schedule": "sched" } },
      "net":   { "op": "tiny", "inputs": { "x": "xt", "t": "t" }, "attrs": { "c": )" + c + R"( } },
      "loss":  { "op": "loss.mse", "inputs": { "pred": "net", "target": "eps" } },
      "opt":   { "op": "optim.adam", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.001 } },
      "ema":   { "op": "optim.ema", "inputs": { "step": "opt.step" }, "attrs": { "decay": 0.9 } },
      "preview": { "op": "eval.sample_grid", "inputs": { "after": "ema" }, "every": 2,
                   "attrs": { "n": 4, "steps": 3, "folder": ")" + dir.str() + R"(/samples" )" + preview_attrs + R"( } } },
    "run": { "ticks": 4, "seed": 0 } })");
}

struct Png {
  int w = 0, h = 0, c = 0;
};

Png png_size(const std::string& path) {
  Png p;
  REQUIRE_MESSAGE(stbi_info(path.c_str(), &p.w, &p.h, &p.c) == 1, "cannot read " << path);
  return p;
}

/// The RunError planning the pipeline raises.
RunError plan_error_of(const std::string& file) {
  auto g = noiseflow::graph::load_pipeline(file, noiseflow::test::load_options());
  try {
    Executor ex(g);
  } catch (const RunError& e) {
    return e;
  }
  FAIL("expected a RunError");
  return RunError({}, "");
}

}  // namespace

TEST_CASE("eval.sample_grid writes a grid titled with the step every `every` ticks, for any net and shape") {
  for (int channels : {3, 1}) {
    CAPTURE(channels);
    TempDir dir;
    auto g = noiseflow::graph::load_pipeline(training(dir, channels, ""), noiseflow::test::load_options());
    auto state = std::make_shared<RunState>();
    Executor ex(g, {}, state);
    ex.run();
    for (const char* step : {"000002", "000004"}) {
      const std::string path = dir.str() + "/samples/step_" + step + ".png";
      REQUIRE(fs::exists(path));
      const Png p = png_size(path);
      // 2 x 2 images of 8 x 12, 1 pixel apart, twice the size: (2 x 13 + 1) x 2 = 54 wide, widened to the
      // title's 12 characters ((12 x 6 - 1) x 2 + 8 = 150); a title line of 24 above (2 x 9 + 1) x 2 = 38.
      CHECK(p.w == 150);
      CHECK(p.h == 24 + 38);
      CHECK(p.c == channels);
    }
    CHECK_FALSE(fs::exists(dir.str() + "/samples/step_000001.png"));
    double seconds = 0;
    int64_t tick = -1;
    CHECK(state->latest("preview_seconds", seconds, &tick));
    CHECK(tick == 3);
    CHECK(seconds > 0);
  }
}

TEST_CASE("eval.sample_grid: what it cannot build is an error naming the node and the attribute") {
  TempDir dir;
  SUBCASE("a sampling pipeline without the stand-in net") {
    const std::string bad = dir.write("bad.json", R"({ "noiseflow": 1, "nodes": {} })");
    const RunError e = plan_error_of(training(dir, 3, ", \"pipeline\": \"" + bad + "\""));
    CHECK(e.diagnostic.node == "preview");
    CHECK(e.diagnostic.field == "attr \"pipeline\"");
    CHECK(e.diagnostic.message == bad + " has no node \"net\" to put the run's net in place of");
  }
  SUBCASE("no such net instance") {
    const RunError e = plan_error_of(training(dir, 3, ", \"net\": \"unet\""));
    CHECK(e.diagnostic.field == "attr \"net\"");
    CHECK(e.diagnostic.message == "the run has no net instance \"unet\" (no node unet.*)");
  }
  SUBCASE("no such schedule") {
    const RunError e = plan_error_of(training(dir, 3, ", \"schedule\": \"t\""));
    CHECK(e.diagnostic.field == "attr \"schedule\"");
    CHECK(e.diagnostic.message == "the run has no diffusion.schedule node \"t\"");
  }
  SUBCASE("a net whose x is not an image of 1 or 3 channels") {
    const RunError e = plan_error_of(training(dir, 2, ""));
    CHECK(e.diagnostic.field == "attr \"net\"");
    CHECK(e.diagnostic.message == "the run's net \"net\" needs an input x of images [N, 1 or 3, H, W], got [4, 2, 8, 12]");
  }
  SUBCASE("a net input the sampling pipeline does not give") {
    const std::string only_x = dir.write("only_x.json", R"({ "noiseflow": 1, "nodes": { "net": { "op": "x", "inputs": { "x": "a" } } } })");
    const RunError e = plan_error_of(training(dir, 3, ", \"pipeline\": \"" + only_x + "\""));
    CHECK(e.diagnostic.field == "attr \"pipeline\"");
    CHECK(e.diagnostic.message == only_x + ": node \"net\" has no input \"t\", which the run's net reads (from \"t.t\")");
  }
  SUBCASE("an attribute out of range is the loader's error naming it") {
    CHECK(noiseflow::test::shape_error_field("eval.sample_grid", {{"n", 0}}, {}) == "n");
    CHECK(noiseflow::test::shape_error_field("eval.sample_grid", {{"prediction", "noise"}}, {}) == "prediction");
  }
}

TEST_CASE("eval.sample_grid's t_max reaches the sampling pipeline's grid: a grid from a low level is another picture") {
  auto grid_bytes = [](const std::string& attrs) {
    TempDir dir;
    auto g = noiseflow::graph::load_pipeline(training(dir, 1, attrs), noiseflow::test::load_options());
    Executor ex(g);
    ex.run();
    int w = 0, h = 0, c = 0;
    unsigned char* p = stbi_load((dir.str() + "/samples/step_000004.png").c_str(), &w, &h, &c, 1);
    REQUIRE(p != nullptr);
    std::vector<unsigned char> v(p, p + w * h);
    stbi_image_free(p);
    return v;
  };
  const auto all = grid_bytes(""), again = grid_bytes(", \"t_max\": -1"), low = grid_bytes(", \"t_max\": 10");
  CHECK(all == again);  // -1 is the default: the whole grid
  REQUIRE(all.size() == low.size());
  CHECK(all != low);  // three steps within [0, 10] from the same noise leave it nearly as it was
}
