// nodes/nn/concat.cpp — y = [a, b, c, d] joined along one axis; oneDNN concat
// forward, backward = one reorder per input from a submemory view of dy.
//
// The primitives work on each tensor's physical layout (desc()), plain or nChw16c. A channel slice of a
// blocked y is a valid view only at multiples of 16 channels, which holds when every input is blocked
// too; when y is blocked but an input is not (e.g. 8 + 8 channels), the primitives use a plain copy of y
// (stage_), converted after forward and from dy before backward.
#include <string>
#include <unordered_map>
#include <vector>

#include "nodes/kernels/dnnl_util.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"

namespace noiseflow::nodes {
namespace {

using namespace noiseflow::runtime;
namespace dnnl_util = kernels::dnnl_util;
using runtime::onnx::Attribute;

constexpr const char* kInputs[] = {"a", "b", "c", "d"};

struct Concat final : Node {
  static Schema schema() {
    return Schema("nn.concat", "Concatenates 2 to 4 tensors along one axis (default: channels)")
        .input("a", "first tensor")
        .input("b", "second tensor; every dimension but `axis` equal to a's")
        .optional_input("c", "optional third tensor")
        .optional_input("d", "optional fourth tensor (needs c)")
        .output("y", "the inputs joined along `axis`, in order a, b, c, d")
        .attr_int("axis", 1, -6, 5, "axis to join along; negative counts from the last")
        .differentiable({"a", "b", "c", "d"})
        .backward_reads({})
        .heavy()
        .layouts(graph::LayoutSupport::uniform)
        .shape([](graph::ShapeContext& c) {
          const auto& a = c.input("a");
          int64_t rank = int64_t(a.size());
          int64_t axis = c.attr_int("axis");
          if (axis < -rank || axis >= rank)
            c.fail("axis", "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank) +
                               " input a " + graph::shape_str(a));
          if (axis < 0) axis += rank;
          if (c.has_input("d") && !c.has_input("c")) c.fail("d", "input d is connected but c is not");
          graph::Shape out = a;
          for (const char* name : {"b", "c", "d"}) {
            if (std::string(name) != "b" && !c.has_input(name)) continue;
            const auto& s = c.input(name);
            bool ok = s.size() == a.size();
            for (size_t i = 0; ok && i < s.size(); ++i) ok = int64_t(i) == axis || s[i] == a[i];
            if (!ok)
              c.fail(name, std::string("shape ") + graph::shape_str(s) + " does not match a " + graph::shape_str(a) +
                               " outside axis " + std::to_string(axis));
            out[axis] += s[axis];
          }
          c.set_output("y", out);
        });
  }

  static void onnx(onnx::OpContext& c) {
    std::vector<std::string> ins;
    for (const char* p : {"a", "b", "c", "d"})
      if (c.has_input(p)) ins.push_back(c.input(p));
    int64_t axis = c.attr_int("axis");
    if (axis < 0) axis += int64_t(c.input_shape("a").size());
    c.add("Concat", ins, {c.output()}, {Attribute::of_int("axis", axis)});
  }

  void plan(Context& ctx) override {
    auto& eng = ctx.engine();
    int64_t axis = ctx.attr_int("axis");
    const Tensor& y = ctx.output("y");
    if (axis < 0) axis += y.rank();
    bool staged = false;
    for (const char* name : kInputs) staged |= y.blocked() && ctx.has_input(name) && !ctx.input(name).blocked();
    if (staged) stage_ = Tensor(y.shape());
    auto dst_md = staged ? stage_.desc() : y.desc();
    std::vector<dnnl::memory::desc> src_mds;
    dnnl::memory::dims offsets(y.rank(), 0);
    for (const char* name : kInputs) {
      if (!ctx.has_input(name)) continue;
      const Tensor& x = ctx.input(name);
      src_mds.push_back(x.desc());
      inputs_.push_back(name);
      // Backward: dx is the slice of dy at this offset, copied out by a reorder.
      auto view_md = dst_md.submemory_desc(to_dims(x.shape()), offsets);
      grad_pds_.emplace_back(eng, view_md, eng, x.desc(), dnnl_util::user_scratchpad_attr());
      grad_reorders_.emplace_back(grad_pds_.back());
      scratchpad_.reserve(grad_pds_.back());
      grad_view_mds_.push_back(view_md);
      offsets[axis] += x.dim(int(axis));
    }
    fwd_pd_ = dnnl::concat::primitive_desc(dst_md, int(axis), src_mds, eng, dnnl_util::user_scratchpad_attr());
    fwd_ = dnnl::concat(fwd_pd_);
    scratchpad_.reserve(fwd_pd_);
  }

  void forward(Context& ctx) override {
    auto& e = ctx.engine();
    Tensor& y = ctx.output("y");
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DST, (stage_.empty() ? y : stage_).dnnl_memory(e)},
                                               {DNNL_ARG_SCRATCHPAD, scratchpad_.memory_for(fwd_pd_, e)}};
    for (size_t i = 0; i < inputs_.size(); ++i)
      args[DNNL_ARG_MULTIPLE_SRC + int(i)] = ctx.input(inputs_[i]).dnnl_read_memory(e);
    fwd_.execute(ctx.stream(), args);
    ctx.stream().wait();
    if (!stage_.empty()) y.assign_plain(stage_);
  }

  void backward(Context& ctx) override {
    auto& e = ctx.engine();
    const Tensor dy = stage_.empty() ? ctx.grad_output("y") : ctx.grad_output("y").to_plain();
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (!ctx.wants_grad(inputs_[i])) continue;
      auto src = dy.dnnl_read_memory(e, grad_view_mds_[i]);
      auto dst = ctx.grad_input(inputs_[i]).dnnl_memory(e);
      grad_reorders_[i].execute(ctx.stream(), {{DNNL_ARG_FROM, src},
                                               {DNNL_ARG_TO, dst},
                                               {DNNL_ARG_SCRATCHPAD, scratchpad_.memory_for(grad_pds_[i], e)}});
    }
    ctx.stream().wait();
  }

 private:
  std::vector<std::string> inputs_;  ///< connected inputs, in order
  dnnl::concat::primitive_desc fwd_pd_;
  dnnl::concat fwd_;
  std::vector<dnnl::memory::desc> grad_view_mds_;  ///< each input's slice of dy
  std::vector<dnnl::reorder::primitive_desc> grad_pds_;
  std::vector<dnnl::reorder> grad_reorders_;
  dnnl_util::Scratchpad scratchpad_;  ///< user-mode, shared by the node's primitives
  Tensor stage_;                      ///< plain y for the primitives when y is blocked and an input is not
};

NOISEFLOW_REGISTER_NODE(Concat);

}  // namespace
}  // namespace noiseflow::nodes
