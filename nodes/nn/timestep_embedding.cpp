// nodes/nn/timestep_embedding.cpp — sinusoidal embedding of diffusion timesteps (DDPM).
//
// half = dim / 2, f_i = exp(-ln(max_period) * i / (half - 1)), e = [sin(t * f), cos(t * f)], sin first.
// Computed in float32 the way the PyTorch reference does (frequencies and products rounded to float),
// so the values match it to float precision even at t = 999.
#include <cmath>
#include <vector>

#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
using runtime::onnx::Attribute;

struct TimestepEmbedding final : Node {
  static Schema schema() {
    return Schema("nn.timestep_embedding",
                  "Sinusoidal timestep embedding [sin(t*f), cos(t*f)], f_i = max_period^(-i/(dim/2-1)) (DDPM)")
        .input("t", "timesteps [N] as floats (fractional ones embed between their neighbours)")
        .output("y", "[N, dim]: sines in the first half, cosines in the second")
        .attr_int("dim", std::nullopt, 4, 1 << 16, "embedding width; even, at least 4")
        .attr_float("max_period", 10000.0, 1.0, 1e9, "the longest period; frequencies span 1 .. 1/max_period")
        .shape([](graph::ShapeContext& c) {
          const Shape& t = c.input("t");
          if (t.size() != 1 && !(t.size() == 2 && t[1] == 1))
            c.fail("t", "expected timesteps of shape [N] (or [N, 1]), got " + graph::shape_str(t));
          const int64_t dim = c.attr_int("dim");
          if (dim < 4 || dim % 2 != 0) c.fail("dim", "must be even and at least 4, got " + std::to_string(dim));
          c.set_output("y", {t[0], dim});
        });
  }

  // Unsqueeze t - Mul by the frequencies - Sin, Cos - Concat (t stays float32).
  static void onnx(onnx::OpContext& c) {
    // The frequencies exactly as the node computes them (float32).
    const int64_t half = c.attr_int("dim") / 2;
    const float neg_log = -float(std::log(c.attr_float("max_period")));
    std::vector<float> freqs(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) freqs[size_t(i)] = std::exp(neg_log * float(i) / float(half - 1));
    std::string t = c.input("t");
    if (c.input_shape("t").size() == 1) t = c.add_temp("t_column", "Unsqueeze", {t, c.ints({1})});
    const std::string a = c.add_temp("angles", "Mul", {t, c.floats(freqs, {half})});
    const std::string sin = c.add_temp("sin", "Sin", {a});
    const std::string cos = c.add_temp("cos", "Cos", {a});
    c.add("Concat", {sin, cos}, {c.output()}, {Attribute::of_int("axis", 1)});
  }

  void plan(Context& ctx) override {
    const int64_t half = ctx.attr_int("dim") / 2;
    const float neg_log = -float(std::log(ctx.attr_float("max_period")));
    freqs_.resize(size_t(half));
    for (int64_t i = 0; i < half; ++i) freqs_[i] = std::exp(neg_log * float(i) / float(half - 1));
  }

  void forward(Context& ctx) override {
    const Tensor& t = ctx.input("t");
    float* y = ctx.output("y").data();
    const int64_t n = t.dim(0), half = int64_t(freqs_.size());
    for (int64_t k = 0; k < n; ++k) {
      float* row = y + k * 2 * half;
      for (int64_t i = 0; i < half; ++i) {
        const float a = t[k] * freqs_[i];
        row[i] = std::sin(a);
        row[half + i] = std::cos(a);
      }
    }
  }

 private:
  std::vector<float> freqs_;
};

NOISEFLOW_REGISTER_NODE(TimestepEmbedding);

}  // namespace
}  // namespace noiseflow::nodes
