// tests/nodes/sampler/test_sampler_errors.cpp — the sampler nodes together (sampler.timesteps and the step
// nodes sampler.ddpm, sampler.ddim): shape errors name the input or attribute, and at run time a t that
// is not the grid's, or a tick past the grid, names t or points.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "runtime/harness.hpp"
#include "tests/nodes/sampler/sampler_chain.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow::runtime;
using namespace noiseflow::test;

TEST_CASE("sampler nodes: shape errors name the input or attribute, bad timesteps at run time name t or points") {
  const Tensor tab = schedule_table(), x({4, 3}), t({4}), bad_t({3}), bad_pred({4, 2});
  const Tensor points = timesteps_points(tab, "ddim", 10), hist({1, 4, 3});
  auto in = [&](const Tensor& pred, const Tensor& tt, const Tensor& pts, const Tensor& h) {
    return NamedTensors{{"x", x}, {"pred", pred}, {"t", tt}, {"points", pts}, {"history", h}};
  };
  CHECK(shape_error_field("sampler.ddpm", {}, in(bad_pred, t, points, hist)) == "pred");
  CHECK(shape_error_field("sampler.ddpm", {}, in(x, bad_t, points, hist)) == "t");
  CHECK(shape_error_field("sampler.timesteps", {}, {{"like", x}, {"schedule", t}}) == "schedule");
  // The grid and the history: what sampler.timesteps gives the step node instead of a t_prev per sample.
  CHECK(shape_error_field("sampler.ddim", {}, in(x, t, t, hist)) == "points");
  CHECK(shape_error_field("sampler.ddim", {}, in(x, t, points, Tensor({2, 4, 3}))) == "history");
  CHECK(shape_error_field("sampler.ddim", {}, in(x, t, points, hist)) == "(no error)");
  CHECK(shape_error_field("sampler.timesteps", {{"sampler", "ddim"}, {"steps", 1001}}, {{"like", x}, {"schedule", tab}}) ==
        "steps");
  CHECK(shape_error_field("sampler.timesteps", {{"sampler", "ddim"}, {"steps", 1000}}, {{"like", x}, {"schedule", tab}}) ==
        "(no error)");

  // The 10-step leading grid 900, 800, ..., 0: tick k evaluates t = 900 - 100 k.
  auto run_field = [&](const Tensor& tt, int64_t tick) -> std::string {
    NodeHarness h("sampler.ddim", {}, in(x, tt, points, hist));
    try {
      h.forward(tick);
    } catch (const NodeError& e) {
      return e.field;
    }
    return "(no error)";
  };
  CHECK(run_field(Tensor({4}, {800, 800, 800, 800}), 1) == "(no error)");
  CHECK(run_field(Tensor({4}, {800, 700, 800, 800}), 1) == "t");     // not the grid's t at this tick
  CHECK(run_field(Tensor({4}, {800, 800, 800, 800.5f}), 1) == "t");  // not the grid's (not an integer)
  CHECK(run_field(Tensor({4}, {800, 800, 1000, 800}), 1) == "t");    // beyond the schedule
  CHECK(run_field(Tensor({4}, {0, 0, 0, 0}), 10) == "points");         // past the grid's last step
}
