#include "graph/schema.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace noiseflow::graph {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string attr_type_name(AttrType t) {
  switch (t) {
    case AttrType::Int: return "int";
    case AttrType::Float: return "float";
    case AttrType::Bool: return "bool";
    case AttrType::String: return "string";
    case AttrType::IntList: return "int_list";
    case AttrType::FloatList: return "float_list";
    case AttrType::Any: return "any";
  }
  return "any";
}

// ---- ShapeContext ----------------------------------------------------------

ShapeContext::ShapeContext(const Schema& schema, const Json& attrs, std::vector<std::optional<Shape>> inputs)
    : outputs(schema.outputs().size()), schema_(schema), attrs_(attrs), inputs_(std::move(inputs)) {}

const Shape& ShapeContext::input(const std::string& name) const {
  int i = schema_.input_index(name);
  if (i < 0) throw std::logic_error(schema_.op() + ": shape rule asks for undeclared input '" + name + "'");
  if (!inputs_[i]) fail(name, "input is not connected");
  return *inputs_[i];
}

bool ShapeContext::has_input(const std::string& name) const {
  int i = schema_.input_index(name);
  return i >= 0 && inputs_[i].has_value();
}

const Json& ShapeContext::attr(const std::string& name) const {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) throw std::logic_error(schema_.op() + ": shape rule asks for undeclared attribute '" + name + "'");
  return *it;
}

void ShapeContext::set_output(const std::string& name, Shape s) {
  int i = schema_.output_index(name);
  if (i < 0) throw std::logic_error(schema_.op() + ": shape rule sets undeclared output '" + name + "'");
  for (auto d : s)
    if (d <= 0) fail(name, "inferred shape " + shape_str(s) + " has a non-positive dimension");
  outputs[i] = std::move(s);
}

void ShapeContext::require_ticks(int64_t n, std::string field, std::string why) {
  ticks = TickDemand{n, std::move(field), std::move(why)};
}

void ShapeContext::param(const std::string& name, Shape s, Init init) {
  params.push_back({name, std::move(s), init});
}

void ShapeContext::fail(const std::string& field, const std::string& msg) const { throw ShapeError(field, msg); }

const Shape& ShapeContext::input_rank(const std::string& name, size_t rank) const {
  const Shape& s = input(name);
  if (s.size() != rank)
    fail(name, "expected rank " + std::to_string(rank) + ", got shape " + shape_str(s));
  return s;
}

// ---- Schema ------------------------------------------------------------------

Schema& Schema::input(std::string name, std::string doc) {
  inputs_.push_back({std::move(name), std::move(doc), false, false});
  return *this;
}
Schema& Schema::optional_input(std::string name, std::string doc) {
  inputs_.push_back({std::move(name), std::move(doc), true, false});
  return *this;
}
Schema& Schema::output(std::string name, std::string doc) {
  outputs_.push_back({std::move(name), std::move(doc), false, false});
  return *this;
}

template <class T>
static Json opt_json(const std::optional<T>& v) {
  return v ? Json(*v) : Json();
}

Schema& Schema::attr_int(std::string name, std::optional<int64_t> def, std::optional<int64_t> min,
                         std::optional<int64_t> max, std::string doc) {
  AttrSpec a{std::move(name), AttrType::Int, opt_json(def), {}, {}, {}, std::move(doc)};
  if (min) a.min = double(*min);
  if (max) a.max = double(*max);
  attrs_.push_back(std::move(a));
  return *this;
}
Schema& Schema::attr_float(std::string name, std::optional<double> def, std::optional<double> min,
                           std::optional<double> max, std::string doc) {
  attrs_.push_back({std::move(name), AttrType::Float, opt_json(def), min, max, {}, std::move(doc)});
  return *this;
}
Schema& Schema::attr_bool(std::string name, std::optional<bool> def, std::string doc) {
  attrs_.push_back({std::move(name), AttrType::Bool, opt_json(def), {}, {}, {}, std::move(doc)});
  return *this;
}
Schema& Schema::attr_string(std::string name, std::optional<std::string> def, std::vector<std::string> choices,
                            std::string doc) {
  attrs_.push_back({std::move(name), AttrType::String, opt_json(def), {}, {}, std::move(choices), std::move(doc)});
  return *this;
}
Schema& Schema::attr_ints(std::string name, std::optional<std::vector<int64_t>> def, std::string doc) {
  attrs_.push_back({std::move(name), AttrType::IntList, opt_json(def), {}, {}, {}, std::move(doc)});
  return *this;
}
Schema& Schema::attr_floats(std::string name, std::optional<std::vector<double>> def, std::string doc) {
  attrs_.push_back({std::move(name), AttrType::FloatList, opt_json(def), {}, {}, {}, std::move(doc)});
  return *this;
}

Schema& Schema::differentiable(std::vector<std::string> names) {
  for (auto& n : names) {
    auto it = std::find_if(inputs_.begin(), inputs_.end(), [&](const PortSpec& p) { return p.name == n; });
    if (it == inputs_.end()) throw std::logic_error(op_ + ": differentiable() names undeclared input '" + n + "'");
    it->differentiable = true;
  }
  return *this;
}

Schema& Schema::backward_reads(std::vector<std::string> names, bool outputs) {
  for (auto& in : inputs_) in.read_by_backward = false;
  for (auto& n : names) {
    auto it = std::find_if(inputs_.begin(), inputs_.end(), [&](const PortSpec& p) { return p.name == n; });
    if (it == inputs_.end()) throw std::logic_error(op_ + ": backward_reads() names undeclared input '" + n + "'");
    it->read_by_backward = true;
  }
  backward_reads_outputs_ = outputs;
  return *this;
}

bool Schema::is_differentiable() const {
  return std::any_of(inputs_.begin(), inputs_.end(), [](const PortSpec& p) { return p.differentiable; });
}

const PortSpec* Schema::find_input(const std::string& name) const {
  int i = input_index(name);
  return i < 0 ? nullptr : &inputs_[i];
}
int Schema::input_index(const std::string& name) const {
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (inputs_[i].name == name) return int(i);
  return -1;
}
int Schema::output_index(const std::string& name) const {
  for (size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i].name == name) return int(i);
  return -1;
}
const AttrSpec* Schema::find_attr(const std::string& name) const {
  for (auto& a : attrs_)
    if (a.name == name) return &a;
  return nullptr;
}
bool Schema::is_back_edge(const std::string& input) const {
  return std::find(back_edges_.begin(), back_edges_.end(), input) != back_edges_.end();
}

Json Schema::with_defaults(const Json& attrs) const {
  Json out = attrs.is_object() ? attrs : Json::object();
  for (auto& a : attrs_)
    if (!out.contains(a.name) && !a.required()) out[a.name] = a.default_value;
  return out;
}

// ---- Attribute checks --------------------------------------------------------

namespace {

// What is wrong with one attribute value.
struct AttrProblem {
  std::string code, message;
};

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// Whole numbers in full (1234567, not 1.23457e+06), others with 15 significant digits.
std::string number_text(double d) {
  if (std::abs(d) < 1e15 && d == std::floor(d)) return std::to_string(int64_t(d));
  std::ostringstream os;
  os << std::setprecision(15) << d;
  return os.str();
}

std::optional<AttrProblem> check_range(const AttrSpec& a, double x) {
  if (a.min && x < *a.min)
    return AttrProblem{"value_below_min", "value " + number_text(x) + " is below the minimum " + number_text(*a.min)};
  if (a.max && x > *a.max)
    return AttrProblem{"value_above_max", "value " + number_text(x) + " is above the maximum " + number_text(*a.max)};
  return std::nullopt;
}

std::optional<AttrProblem> check_choice(const AttrSpec& a, const std::string& v) {
  if (a.choices.empty() || std::find(a.choices.begin(), a.choices.end(), v) != a.choices.end()) return std::nullopt;
  std::string list;
  for (auto& c : a.choices) list += (list.empty() ? "" : ", ") + quoted(c);
  return AttrProblem{"bad_choice", "value " + Json(v).dump() + " is not one of " + list + suggest(v, a.choices)};
}

// True if `v` is an array whose every element passes `element`.
template <class Pred>
bool is_list_of(const Json& v, Pred element) {
  return v.is_array() && std::all_of(v.begin(), v.end(), element);
}

std::optional<AttrProblem> check_value(const AttrSpec& a, const Json& v) {
  auto wrong_type = [&](const std::string& expected) {
    return AttrProblem{"wrong_type", "expected " + expected + ", got " + v.dump()};
  };
  switch (a.type) {
    case AttrType::Int:
      if (!v.is_number_integer()) return wrong_type("an integer");
      return check_range(a, double(v.get<int64_t>()));
    case AttrType::Float:
      if (!v.is_number()) return wrong_type("a number");
      return check_range(a, v.get<double>());
    case AttrType::Bool:
      if (!v.is_boolean()) return wrong_type("true or false");
      return std::nullopt;
    case AttrType::String:
      if (!v.is_string()) return wrong_type("a string");
      return check_choice(a, v.get<std::string>());
    case AttrType::IntList:
      if (!is_list_of(v, [](const Json& x) { return x.is_number_integer(); })) return wrong_type("a list of integers");
      return std::nullopt;
    case AttrType::FloatList:
      if (!is_list_of(v, [](const Json& x) { return x.is_number(); })) return wrong_type("a list of numbers");
      return std::nullopt;
    case AttrType::Any: return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::vector<Diagnostic> Schema::check_attrs(const Json& attrs, const std::string& file, const std::string& node) const {
  std::vector<Diagnostic> problems;
  for (auto& a : attrs_) {
    const std::string field = "attr " + quoted(a.name);
    auto it = attrs.find(a.name);
    if (it == attrs.end()) {
      if (a.required())
        problems.push_back({file, node, field, "missing_attr", "missing required attribute (" + attr_type_name(a.type) + ")"});
      continue;
    }
    if (auto p = check_value(a, *it)) problems.push_back({file, node, field, p->code, p->message});
  }
  return problems;
}

ShapeContext Schema::infer(const Json& attrs, std::vector<std::optional<Shape>> inputs) const {
  inputs.resize(inputs_.size());
  ShapeContext ctx(*this, attrs, std::move(inputs));
  for (size_t i = 0; i < inputs_.size(); ++i)
    if (!inputs_[i].optional && !is_back_edge(inputs_[i].name) && !ctx.has_input(inputs_[i].name)) ctx.fail(inputs_[i].name, "input is not connected");
  if (shape_fn_) shape_fn_(ctx);
  for (size_t i = 0; i < outputs_.size(); ++i)
    if (ctx.outputs[i].empty() && shape_fn_)
      throw std::logic_error(op_ + ": shape rule did not set output '" + outputs_[i].name + "'");
  return ctx;
}

Json Schema::to_json() const {
  Json j;
  j["op"] = op_;
  j["doc"] = doc_;
  auto ports = [](const std::vector<PortSpec>& ps, bool in) {
    Json arr = Json::array();
    for (auto& p : ps) {
      Json e{{"name", p.name}, {"doc", p.doc}};
      if (in) {
        e["optional"] = p.optional;
        e["differentiable"] = p.differentiable;
      }
      arr.push_back(e);
    }
    return arr;
  };
  j["inputs"] = ports(inputs_, true);
  j["outputs"] = ports(outputs_, false);
  Json attrs = Json::array();
  for (auto& a : attrs_) {
    Json e{{"name", a.name}, {"type", attr_type_name(a.type)}, {"doc", a.doc}};
    if (!a.required()) e["default"] = a.default_value; else e["required"] = true;
    if (a.min) e["min"] = *a.min;
    if (a.max) e["max"] = *a.max;
    if (!a.choices.empty()) e["choices"] = a.choices;
    attrs.push_back(e);
  }
  j["attrs"] = attrs;
  j["heavy"] = heavy_;
  j["layouts"] = layouts_ == LayoutSupport::any ? "any" : layouts_ == LayoutSupport::uniform ? "uniform" : "plain";
  j["sink"] = sink_;
  if (stops_gradient_) j["stops_gradient"] = true;
  return j;
}

}  // namespace noiseflow::graph
