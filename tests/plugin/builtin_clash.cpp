// A plugin that registers a new node type, then one named like a built-in (tensor.constant): loading it
// is an error naming the op and both origins, and neither type stays registered
// (tests/tools/test_plugin.cpp).
#include "runtime/node.hpp"

namespace {

using namespace noiseflow::runtime;

struct Extra final : Node {
  static Schema schema() {
    return Schema("plugin.clash_extra", "registered before the clash; removed with it").output("y", "[1]").shape(
        [](noiseflow::graph::ShapeContext& c) { c.set_output("y", {1}); });
  }
  void forward(Context&) override {}
};

struct Constant final : Node {
  static Schema schema() {
    return Schema("tensor.constant", "a second tensor.constant").output("y", "[1]").shape(
        [](noiseflow::graph::ShapeContext& c) { c.set_output("y", {1}); });
  }
  void forward(Context&) override {}
};

// Static initialisers of one file run in order: Extra first.
NOISEFLOW_REGISTER_NODE(Extra);
NOISEFLOW_REGISTER_NODE(Constant);

}  // namespace
