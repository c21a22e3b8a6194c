#include "runtime/node.hpp"

#include "runtime/random.hpp"

namespace noiseflow::runtime {

Engine& Engine::get() {
  static Engine e{dnnl::engine(dnnl::engine::kind::cpu, 0), dnnl::stream()};
  static bool init = [] {
    e.stream = dnnl::stream(e.engine);
    return true;
  }();
  (void)init;
  return e;
}

const Json& Context::attr(const std::string& name) const {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) throw std::logic_error(op() + ": node asks for undeclared attribute '" + name + "'");
  return *it;
}

bool Context::has_input(const std::string& name) const {
  int i = schema_->input_index(name);
  return i >= 0 && size_t(i) < inputs_.size() && !inputs_[i].empty();
}

const Tensor& Context::input(const std::string& name) const {
  int i = schema_->input_index(name);
  if (i < 0) throw std::logic_error(op() + ": node asks for undeclared input '" + name + "'");
  if (size_t(i) >= inputs_.size() || inputs_[i].empty()) fail(name, "input is not connected");
  return inputs_[i];
}

Tensor& Context::output(const std::string& name) {
  int i = schema_->output_index(name);
  if (i < 0) throw std::logic_error(op() + ": node asks for undeclared output '" + name + "'");
  return outputs_.at(i);
}

Param& Context::param_ref(const std::string& name) {
  auto it = param_by_local_.find(name);
  if (it == param_by_local_.end()) throw std::logic_error(op() + ": node asks for undeclared parameter '" + name + "'");
  return *it->second;
}

const Tensor& Context::grad_output(const std::string& name) const {
  int i = schema_->output_index(name);
  if (i < 0) throw std::logic_error(op() + ": node asks for the gradient of undeclared output '" + name + "'");
  return grad_outputs_.at(i);
}

Tensor& Context::grad_input(const std::string& name) {
  int i = schema_->input_index(name);
  if (i < 0) throw std::logic_error(op() + ": node asks for the gradient of undeclared input '" + name + "'");
  if (size_t(i) >= grad_inputs_.size() || grad_inputs_[i].empty())
    throw std::logic_error(op() + ": gradient of input '" + name + "' is not wanted (check wants_grad)");
  return grad_inputs_[i];
}

bool Context::wants_grad(const std::string& name) const {
  int i = schema_->input_index(name);
  return i >= 0 && size_t(i) < grad_inputs_.size() && !grad_inputs_[i].empty();
}

uint64_t Context::random_key() const { return random::mix(seed_, random::hash(id_)); }

Registry& Registry::global() {
  static Registry r;
  return r;
}

bool Registry::add(NodeType type) {
  std::string op = type.schema.op();
  if (types_.count(op)) {
    if (!loading_) throw std::logic_error("node type '" + op + "' is registered twice");
    const std::string first = origin(op);
    loading_->problems.push_back({"plugin_duplicate_node",
                                  "node type \"" + op + "\" is registered twice: by " +
                                      (first.empty() ? std::string("the program itself (built in)") : first) +
                                      " and by " + loading_->origin});
    return false;
  }
  types_.emplace(op, std::move(type));
  if (loading_) {
    origins_[op] = loading_->origin;
    loading_->added.push_back(op);
  }
  return true;
}

bool Registry::add_from(const std::function<NodeType()>& make_type) {
  if (!loading_) return add(make_type());
  try {
    return add(make_type());
  } catch (const std::exception& e) {
    loading_->problems.push_back({"plugin_registration_failed", std::string("a node type's registration failed: ") + e.what()});
  } catch (...) {
    loading_->problems.push_back(
        {"plugin_registration_failed", "a node type's registration failed (an exception not derived from std::exception)"});
  }
  return false;
}

std::string Registry::origin(const std::string& op) const {
  auto it = origins_.find(op);
  return it == origins_.end() ? std::string() : it->second;
}

void Registry::begin_load(std::string origin) {
  if (loading_) throw std::logic_error("Registry::begin_load: " + loading_->origin + " is still loading");
  loading_ = std::make_unique<LoadReport>();
  loading_->origin = std::move(origin);
}

Registry::LoadReport Registry::end_load() {
  if (!loading_) throw std::logic_error("Registry::end_load without begin_load");
  LoadReport r = std::move(*loading_);
  loading_.reset();
  return r;
}

void Registry::remove(const LoadReport& load) {
  for (auto& op : load.added) types_.erase(op), origins_.erase(op);
}

const NodeType* Registry::find(const std::string& op) const {
  auto it = types_.find(op);
  return it == types_.end() ? nullptr : &it->second;
}

const graph::Schema* Registry::find_schema(const std::string& op) const {
  auto t = find(op);
  return t ? &t->schema : nullptr;
}

std::vector<std::string> Registry::ops() const {
  std::vector<std::string> v;
  for (auto& [k, _] : types_) v.push_back(k);
  return v;
}

}  // namespace noiseflow::runtime
