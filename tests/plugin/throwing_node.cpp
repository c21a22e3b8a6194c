// A plugin whose node type's schema throws while the library loads: an error naming the file and the
// reason, not a process ended in a static initialiser (tests/tools/test_plugin.cpp).
#include <stdexcept>

#include "runtime/node.hpp"

namespace {

using namespace noiseflow::runtime;

struct Throwing final : Node {
  static Schema schema() { throw std::runtime_error("plugin.throwing: this schema cannot be built"); }
  void forward(Context&) override {}
};

NOISEFLOW_REGISTER_NODE(Throwing);

}  // namespace
