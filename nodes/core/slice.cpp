// nodes/core/slice.cpp — rows [start, start + count) of a tensor along its first dimension.
#include <cstring>

#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Slice final : Node {
  static Schema schema() {
    return Schema("tensor.slice", "Entries [start, start + count) of a tensor along its first dimension (a copy)")
        .input("x", "any tensor [N, ...]")
        .output("y", "[count, ...]")
        .attr_int("start", 0, 0, {}, "first entry")
        .attr_int("count", std::nullopt, 1, {}, "number of entries")
        .shape([](graph::ShapeContext& c) {
          graph::Shape s = c.input("x");
          if (s.empty()) c.fail("x", "expected a tensor with a first dimension, got a scalar shape []");
          const int64_t start = c.attr_int("start"), count = c.attr_int("count");
          if (start + count > s[0])
            c.fail("count", "entries [" + std::to_string(start) + ", " + std::to_string(start + count) +
                                ") do not fit in the first dimension of " + graph::shape_str(s));
          s[0] = count;
          c.set_output("y", s);
        });
  }

  void forward(Context& ctx) override {
    const Tensor x = ctx.input("x").to_plain();
    Tensor& y = ctx.output("y");
    const int64_t row = x.numel() / x.dim(0);
    std::memcpy(y.data(), x.data() + ctx.attr_int("start") * row, size_t(y.numel()) * sizeof(float));
  }
};

NOISEFLOW_REGISTER_NODE(Slice);

}  // namespace
}  // namespace noiseflow::nodes
