// nodes/core/input.cpp — a tensor supplied from outside the graph: the
// embedding application writes into it (Pipeline::output("id")) before a
// tick; it starts as zeros. Subgraph files checked on their own get one per
// declared input.
#include "graph/pipeline.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct Input final : Node {
  static Schema schema() {
    return Schema(graph::kInputOp, "a tensor supplied by the embedding application (zeros until written)")
        .attr_ints("shape", std::nullopt, "the tensor's shape")
        .output("y", "the tensor")
        .shape([](graph::ShapeContext& c) {
          auto s = c.attr_ints("shape");
          if (s.empty()) c.fail("shape", "needs at least one dimension");
          for (auto d : s)
            if (d < 1) c.fail("shape", "dimensions must be >= 1, got " + graph::shape_str(s));
          c.set_output("y", s);
        });
  }
  void forward(Context&) override {}
};

NOISEFLOW_REGISTER_NODE(Input);

}  // namespace
}  // namespace noiseflow::nodes
