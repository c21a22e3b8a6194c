// tests/graph/test_run_ticks.cpp — run.ticks "auto" (the count a sampler requires) and ops chosen by
// params ("op": "sampler.${sampler}"): what loads, and the message when it cannot.
#include <doctest/doctest.h>

#include <string>

#include "graph/pipeline.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using graph::GraphError;

namespace {

// The Gaussian sampler wiring of pipelines/examples/gaussian_sampler.json with `run` and params.
std::string sampler_pipeline(const std::string& run, const std::string& sampler = "heun", int steps = 10) {
  return R"({ "noiseflow": 1, "params": { "sampler": ")" + sampler + R"(", "steps": )" + std::to_string(steps) +
         R"( },
  "nodes": {
    "sched": { "op": "diffusion.schedule", "attrs": { "T": 100 } },
    "noise": { "op": "random.normal", "attrs": { "shape": [2, 1, 2, 2] } },
    "ts":    { "op": "sampler.timesteps", "inputs": { "like": "noise", "schedule": "sched" },
               "attrs": { "sampler": "$sampler", "steps": "$steps", "spacing": "karras" } },
    "x":     { "op": "state", "inputs": { "init": "noise", "next": "step.x_next" } },
    "h":     { "op": "state", "inputs": { "init": "ts.history", "next": "step.history" } },
    "den":   { "op": "diffusion.gaussian_denoiser", "inputs": { "x": "x", "t": "ts.t", "schedule": "sched" } },
    "step":  { "op": "sampler.${sampler}",
               "inputs": { "x": "x", "pred": "den", "t": "ts.t", "points": "ts.points", "history": "h" } } },
  "run": )" + run + " }";
}

std::string load_error(const std::string& text, graph::LoadOptions o = test::load_options()) {
  try {
    graph::load_pipeline_text(text, "p.json", o);
  } catch (const GraphError& e) {
    return e.what();
  }
  FAIL("loaded without errors");
  return {};
}

}  // namespace

TEST_CASE("run.ticks auto takes the sampler's evaluation count: heun K steps = 2K - 1 ticks") {
  const auto g = graph::load_pipeline_text(sampler_pipeline(R"({ "ticks": "auto" })"), "p.json", test::load_options());
  CHECK(g.ticks == 19);
  CHECK(g.nodes[size_t(g.find("step"))].op == "sampler.heun");
  CHECK(g.resolved["run"]["ticks"] == 19);  // the resolved pipeline says the number
  const auto e = graph::load_pipeline_text(sampler_pipeline(R"({ "ticks": "auto" })", "dpmpp_2m", 7), "p.json",
                                           test::load_options());
  CHECK(e.ticks == 7);
}

TEST_CASE("a run.ticks that differs from the sampler's count is an error naming the node and the fix") {
  const std::string msg = load_error(sampler_pipeline(R"({ "ticks": 20 })"));
  CHECK(msg.find("node \"ts\"") != std::string::npos);
  CHECK(msg.find("heun with steps = 10") != std::string::npos);
  CHECK(msg.find("19 ticks") != std::string::npos);
  CHECK(msg.find("\"auto\"") != std::string::npos);
  auto o = test::load_options();
  o.ticks = 3;
  CHECK(load_error(sampler_pipeline(R"({ "ticks": "auto" })"), o).find("--ticks is 3") != std::string::npos);
  // Equal counts load.
  CHECK(graph::load_pipeline_text(sampler_pipeline(R"({ "ticks": 19 })"), "p.json", test::load_options()).ticks == 19);
}

TEST_CASE("run.ticks auto without a node that requires a count is an error") {
  const std::string text = R"({ "noiseflow": 1, "nodes": { "c": { "op": "random.normal", "attrs": { "shape": [1] } } },
                                "run": { "ticks": "auto" } })";
  CHECK(load_error(text).find("\"auto\" needs a node") != std::string::npos);
  CHECK(load_error(R"({ "noiseflow": 1, "nodes": {}, "run": { "ticks": "many" } })").find("or \"auto\"") !=
        std::string::npos);
}

TEST_CASE("an op chosen by a param: an unknown choice names the written op and suggests the nearest") {
  auto o = test::load_options({{"sampler", "dpmpp_3m"}});
  const std::string msg = load_error(sampler_pipeline(R"({ "ticks": "auto" })", "heun"), o);
  CHECK(msg.find("unknown node type \"sampler.dpmpp_3m\" (from \"sampler.${sampler}\")") != std::string::npos);
  // sampler.timesteps rejects the value first too (its `sampler` attribute lists the choices).
  CHECK(msg.find("dpmpp_2m") != std::string::npos);
}

TEST_CASE("a step node whose timesteps node names another sampler fails on the history shape") {
  std::string text = sampler_pipeline(R"({ "ticks": "auto" })", "unipc");
  const auto at = text.find("\"sampler.${sampler}\"");
  text.replace(at, std::string("\"sampler.${sampler}\"").size(), "\"sampler.heun\"");
  const std::string msg = load_error(text);
  CHECK(msg.find("node \"step\"") != std::string::npos);
  CHECK(msg.find("sampler heun keeps a history of shape [2, 2, 1, 2, 2]") != std::string::npos);
}

namespace {

// A pipeline whose run is sized by its budget: ticks "$steps", fit "steps".
std::string fitted(const std::string& steps, const std::string& minutes, const std::string& fit = "\"steps\"") {
  return R"({ "noiseflow": 1, "params": { "steps": )" + steps + R"(, "minutes": )" + minutes + R"( },
  "nodes": { "c": { "op": "tensor.constant", "attrs": { "shape": [1], "fill": 1 } } },
  "run": { "ticks": "$steps", "minutes": "$minutes", "fit": )" + fit + " } }";
}

}  // namespace

TEST_CASE("run.fit: a fitted param of 0 with a budget leaves the run to be sized, without one it is an error") {
  const auto g = graph::load_pipeline_text(fitted("0", "30"), "p.json", test::load_options());
  CHECK(g.fit == "steps");
  CHECK(g.fit_pending);
  CHECK(g.ticks == 0);
  CHECK(g.resolved["run"]["fit"] == "steps");
  // A count given is a fixed run: fit changes nothing.
  const auto fixed = graph::load_pipeline_text(fitted("40", "30"), "p.json", test::load_options());
  CHECK_FALSE(fixed.fit_pending);
  CHECK(fixed.ticks == 40);
  const std::string none = load_error(fitted("0", "0"));
  CHECK(none.find("params.steps: 0 ticks: give the run a length (--set steps=N) or a budget to size it to "
                  "(--set minutes=M)") != std::string::npos);
  CHECK(load_error(fitted("0", "30", "\"stepz\"")).find("\"fit\" names the param that a budget sizes") !=
        std::string::npos);
  CHECK(load_error(fitted("0", "30", "3")).find("a string naming one of the params, got 3") != std::string::npos);
  // Without fit, 0 ticks stays the plain error it was.
  const std::string plain = load_error(R"({ "noiseflow": 1, "nodes": { "c": { "op": "tensor.constant",
    "attrs": { "shape": [1], "fill": 1 } } }, "run": { "ticks": 0, "minutes": 5 } })");
  CHECK(plain.find("\"ticks\" must be an integer >= 1") != std::string::npos);
}
