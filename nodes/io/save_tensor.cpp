// nodes/io/save_tensor.cpp — writes its input to a safetensors file (one F32 tensor under `name`),
// atomically; io.load_tensor reads it back (e.g. samples to score with pipelines/eval/fd.json).
#include <filesystem>

#include "runtime/safetensors.hpp"
#include "runtime/node.hpp"
#include "runtime/node_files.hpp"
#include "runtime/run_state.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct SaveTensor final : Node {
  static Schema schema() {
    return Schema("io.save_tensor",
                  "Writes its input as one F32 tensor of a safetensors file (atomically: PATH.tmp, fsync, rename); "
                  "`{tick}` in the path becomes the tick; read it back with io.load_tensor")
        .input("x", "the tensor to write, any shape")
        .attr_string("path", std::nullopt, {}, "file to write, e.g. runs/mnist/samples.safetensors")
        .attr_string("name", "x", {}, "the tensor's name in the file")
        .sink()
        .shape([](graph::ShapeContext& c) {
          if (c.attr_string("path").empty()) c.fail("path", "must not be empty");
          if (c.attr_string("name").empty()) c.fail("name", "must not be empty");
        });
  }

  void forward(Context& ctx) override {
    const std::filesystem::path path = runtime::expand_path(ctx.attr_string("path"), ctx.tick());
    runtime::make_parent_folder(ctx, path);
    Tensor copy = ctx.input("x").to_plain();
    try {
      write_safetensors(path.string(), {{ctx.attr_string("name"), std::move(copy)}}, {{"format", "pt"}});
    } catch (const CheckpointError& e) {
      ctx.fail("path", e.what());
    }
    if (ctx.run_state()) ctx.run_state()->artifact("tensor", path.string(), ctx.id());
  }
};

NOISEFLOW_REGISTER_NODE(SaveTensor);

}  // namespace
}  // namespace noiseflow::nodes
