// nodes/io/load_tensor.cpp — one tensor of a safetensors file (written by io.save_tensor or any
// other tool) as a constant; its shape is declared in the pipeline and checked against the file.
#include <algorithm>
#include <vector>

#include "runtime/safetensors.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;

struct LoadTensor final : Node {
  static Schema schema() {
    return Schema("io.load_tensor",
                  "One tensor of a safetensors file (F32, or F16/BF16/F64 converted) as a constant output; the "
                  "file's shape must equal `shape`, or only `shape[0]` entries from entry `start` are taken when "
                  "`prefix` is true")
        .output("y", "the tensor, shape `shape`")
        .attr_string("path", std::nullopt, {}, "the safetensors file")
        .attr_string("name", "x", {}, "the tensor's name in the file")
        .attr_ints("shape", std::nullopt, "the tensor's shape, e.g. [1000, 1, 28, 28]")
        .attr_bool("prefix", false, "accept a file with more entries along the first dimension and take the first ones")
        .attr_int("start", 0, 0, std::nullopt,
                  "with prefix: the first entry taken (e.g. 1000 for the second of disjoint sets of 1000)")
        .attr_string("hint", "", {}, "added to the error when the file is missing (how to make it)")
        .shape([](graph::ShapeContext& c) {
          const auto s = c.attr_ints("shape");
          if (s.empty()) c.fail("shape", "must have at least one dimension");
          for (int64_t d : s)
            if (d < 1) c.fail("shape", "dimensions must be >= 1, got " + graph::shape_str(s));
          c.set_output("y", s);
        });
  }

  void plan(Context& ctx) override {
    const std::string path = ctx.attr_string("path"), name = ctx.attr_string("name");
    SafeTensors file;
    try {
      file = read_safetensors(path);
    } catch (const CheckpointError& e) {
      const std::string hint = ctx.attr_string("hint");
      ctx.fail("path", std::string(e.what()) + (hint.empty() ? "" : " (" + hint + ")"));
    }
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) {
      std::string names;
      for (auto& [k, v] : file.tensors) names += (names.empty() ? "" : ", ") + k;
      ctx.fail("name", path + " has no tensor '" + name + "' (it holds: " + names + ")");
    }
    const Shape want = ctx.attr_ints("shape"), got = it->second.shape();
    const int64_t start = ctx.attr_int("start");
    if (start > 0 && !ctx.attr_bool("prefix"))
      ctx.fail("start", "start " + std::to_string(start) + " needs prefix: true (a slice of a larger file)");
    const bool prefix_ok = ctx.attr_bool("prefix") && got.size() == want.size() && got[0] >= start + want[0] &&
                           std::equal(got.begin() + 1, got.end(), want.begin() + 1);
    if (got != want && !prefix_ok)
      ctx.fail("shape", path + ": tensor '" + name + "' has shape " + graph::shape_str(got) + ", the pipeline expects " +
                            graph::shape_str(want) +
                            (ctx.attr_bool("prefix") ? " (or more entries along dim 0" +
                                                           (start > 0 ? ", from entry " + std::to_string(start) : "") + ")"
                                                     : ""));
    int64_t count = 1, row = 1;
    for (int64_t d : want) count *= d;
    for (size_t k = 1; k < want.size(); ++k) row *= want[k];
    const float* first = it->second.data() + start * row;
    data_.assign(first, first + count);
  }

  void forward(Context& ctx) override { std::copy(data_.begin(), data_.end(), ctx.output("y").data()); }

 private:
  std::vector<float> data_;
};

NOISEFLOW_REGISTER_NODE(LoadTensor);

}  // namespace
}  // namespace noiseflow::nodes
