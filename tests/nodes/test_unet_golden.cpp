// unet-small (pipelines/nets/unet_small.json) against the PyTorch reference's
// golden values (shared/golden_unet_small.json): same deterministic weights
// and inputs, outputs, loss and gradient norms to about 1e-4 relative.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "graph/pipeline.hpp"
#include "runtime/exec/executor.hpp"
#include "tests/test_util.hpp"

using namespace noiseflow;
using runtime::Tensor;

namespace {

const char* kGoldenPipeline = R"({
  "noiseflow": 1,
  "include": { "unet": "nets/unet_small.json" },
  "nodes": {
    "x":      { "op": "input", "attrs": { "shape": [3, 1, 28, 28] } },
    "t":      { "op": "input", "attrs": { "shape": [3] } },
    "target": { "op": "input", "attrs": { "shape": [3, 1, 28, 28] } },
    "net":    { "op": "unet", "inputs": { "x": "x", "t": "t" } },
    "loss":   { "op": "loss.mse", "inputs": { "pred": "net", "target": "target" } },
    "opt":    { "op": "optim.sgd", "inputs": { "loss": "loss" }, "attrs": { "lr": 0.0 } }
  }
})";

std::string shared_dir() { return std::string(NOISEFLOW_SOURCE_DIR) + "/../shared"; }

std::vector<std::string> param_order() {
  std::ifstream in(shared_dir() + "/unet_small_params.tsv");
  std::vector<std::string> names;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string k, name;
    ls >> k >> name;
    if (!name.empty()) names.push_back(name);
  }
  return names;
}

bool is_norm_scale(const std::string& n) {
  return n == "out_norm.weight" || (n.find(".norm") != std::string::npos && n.size() > 7 &&
                                    n.compare(n.size() - 7, 7, ".weight") == 0);
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

}  // namespace

TEST_CASE("unet_small matches the PyTorch reference (golden values)") {
  if (!std::filesystem::exists(shared_dir() + "/golden_unet_small.json")) {
    MESSAGE("shared/golden_unet_small.json not found: skipped");
    return;
  }
  nlohmann::json gold;
  std::ifstream(shared_dir() + "/golden_unet_small.json") >> gold;
  auto order = param_order();
  REQUIRE(order.size() == 214);

  auto g = graph::load_pipeline_text(kGoldenPipeline, std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/golden.json",
                                     test::load_options());
  CHECK(g.param_count() == 1539329);
  runtime::Executor ex(g);

  // Deterministic weights in the reference's parameter order.
  REQUIRE(ex.params().size() == 214);
  for (size_t k = 0; k < order.size(); ++k) {
    runtime::Param* p = ex.find_param("net." + order[k]);
    REQUIRE_MESSAGE(p, "missing parameter net." << order[k]);
    bool scale = is_norm_scale(order[k]);
    for (int64_t i = 0; i < p->value.numel(); ++i)
      p->value[i] = float((scale ? 1.0 : 0.0) + 0.05 * std::sin(0.37 * double(i) + 1.3 * double(k)));
  }
  Tensor x = ex.output("x"), t = ex.output("t"), target = ex.output("target");
  for (int64_t j = 0; j < x.numel(); ++j) {
    x[j] = float(std::sin(0.013 * double(j) * double(j) / 784.0 + 0.5 * double(j % 784) / 28.0));
    target[j] = float(std::cos(0.7 * double(j)));
  }
  t[0] = 0, t[1] = 499, t[2] = 999;
  ex.step();

  Tensor out = ex.output("net");
  double sum = 0, abs_sum = 0, mean[3] = {0, 0, 0};
  for (int64_t j = 0; j < out.numel(); ++j) sum += out[j], abs_sum += std::abs(out[j]), mean[j / 784] += out[j] / 784.0;
  CHECK(rel(sum, gold["out_sum"]) < 1e-4);
  CHECK(rel(abs_sum, gold["out_abs_sum"]) < 1e-4);
  for (int n = 0; n < 3; ++n) CHECK(rel(mean[n], gold["out_per_image_mean"][n]) < 1e-4);
  for (int i = 0; i < 8; ++i) CHECK(std::abs(out[i] - gold["out_first8_img0"][i].get<double>()) < 2e-5);
  CHECK(rel(ex.output("loss")[0], gold["loss_mse_vs_target"]) < 1e-4);

  for (auto& [name, norm] : gold["grad_norms"].items()) {
    runtime::Param* p = ex.find_param("net." + name);
    REQUIRE(p);
    double s = 0;
    for (int64_t i = 0; i < p->grad.numel(); ++i) s += double(p->grad[i]) * p->grad[i];
    INFO("gradient norm of " << name);
    CHECK(rel(std::sqrt(s), norm.get<double>()) < 1e-3);
  }
}

TEST_CASE("unet_small: output shape, gradients reach every parameter, finite differences per layer kind") {
  std::string text = kGoldenPipeline;
  for (auto pos = text.find("[3"); pos != std::string::npos; pos = text.find("[3", pos)) text[pos + 1] = '2';
  auto g = graph::load_pipeline_text(text, std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/fd.json", test::load_options());
  runtime::Executor ex(g, {.threads = 1});
  // Non-zero weights everywhere (the default init zeroes output layers, which would hide gradients).
  int k = 0;
  for (auto& p : ex.params()) {
    std::string local = p.name.substr(4);
    bool scale = is_norm_scale(local);
    for (int64_t i = 0; i < p.value.numel(); ++i)
      p.value[i] = float((scale ? 1.0 : 0.0) + 0.08 * std::sin(0.37 * double(i) + 1.3 * double(k)));
    ++k;
  }
  Tensor x = ex.output("x"), t = ex.output("t"), target = ex.output("target");
  for (int64_t j = 0; j < x.numel(); ++j) {
    x[j] = float(std::sin(0.017 * double(j) + 0.3 * double(j % 28)));
    target[j] = float(std::cos(0.7 * double(j)));
  }
  t[0] = 3, t[1] = 700;
  auto loss_now = [&] {
    ex.step();
    return double(ex.output("loss")[0]);
  };
  loss_now();
  CHECK(ex.output("net").shape() == ex.output("x").shape());
  // Every parameter receives a gradient.
  std::map<std::string, std::vector<float>> grads;
  for (auto& p : ex.params()) {
    bool nonzero = false;
    for (int64_t i = 0; i < p.grad.numel() && !nonzero; ++i) nonzero = p.grad[i] != 0.f;
    INFO(p.name);
    CHECK(nonzero);
    grads[p.name] = p.grad.to_vector();
  }
  // Central differences on a sample of elements from every layer kind.
  const char* sample[] = {"net.stem.weight", "net.stem.bias", "net.temb1.weight", "net.temb2.bias",
                          "net.down.0.norm1.weight", "net.down.0.norm1.bias", "net.down.3.skip.weight",
                          "net.down.2.conv.weight", "net.mid_attn.qkv.weight", "net.mid_attn.proj.weight",
                          "net.mid_attn.norm.weight", "net.up.3.conv.weight", "net.up.8.temb.weight",
                          "net.out_norm.bias", "net.out_conv.weight", "net.out_conv.bias"};
  for (const char* name : sample) {
    runtime::Param* p = ex.find_param(name);
    REQUIRE_MESSAGE(p, name);
    // The element with the largest gradient magnitude, and one more spread across the tensor.
    const auto& gv = grads[name];
    int64_t best = 0;
    for (int64_t i = 1; i < int64_t(gv.size()); ++i)
      if (std::abs(gv[i]) > std::abs(gv[best])) best = i;
    for (int64_t i : {best, int64_t(gv.size() / 3)}) {
      float orig = p->value[i];
      const float h = 1e-2f;
      p->value[i] = orig + h;
      double lp = loss_now();
      p->value[i] = orig - h;
      double lm = loss_now();
      p->value[i] = orig;
      double fd = (lp - lm) / (2.0 * h);
      // The float loss carries a few ulps of rounding noise, which a central difference divides by 2h:
      // below about 8 ulps / 2h (5e-5 here) it cannot resolve a gradient (mid_attn's are ~1e-6).
      const double noise = std::max(1e-5, 8.0 * std::numeric_limits<float>::epsilon() * std::abs(lp) / (2.0 * h));
      INFO(std::string(name) << "[" << i << "]: analytic " << gv[i] << ", finite difference " << fd);
      CHECK(std::abs(fd - gv[i]) <= 2e-2 * std::max(std::abs(double(gv[best])), 1e-3) + noise);
    }
  }
}
