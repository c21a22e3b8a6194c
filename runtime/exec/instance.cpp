#include "runtime/exec/instance.hpp"

#include "runtime/parameters.hpp"

namespace noiseflow::runtime::exec {

Instance make_instance(const NodeType& type, std::string id, Json attrs, uint64_t seed, int64_t ticks) {
  Instance in;
  in.node = type.make();
  Context& c = in.ctx;
  c.id_ = std::move(id);
  c.schema_ = &type.schema;
  c.attrs_ = std::move(attrs);
  c.seed_ = seed;
  c.ticks_ = ticks;
  return in;
}

void add_params(Instance& in, const std::vector<graph::ParamDecl>& decls, uint64_t seed, std::deque<Param>& store) {
  for (const auto& d : decls) {
    store.push_back(make_param(in.ctx.id_ + "." + d.name, d.shape, d.init, seed));
    in.ctx.params_.push_back(&store.back());
    in.ctx.param_by_local_[d.name] = &store.back();
  }
}

void plan_instance(Instance& in) { in.node->plan(in.ctx); }

}  // namespace noiseflow::runtime::exec
