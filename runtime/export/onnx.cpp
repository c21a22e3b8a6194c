#include "runtime/export/onnx.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/atomic_write.hpp"
#include "runtime/safetensors.hpp"
#include "runtime/export/protobuf.hpp"
#include "runtime/node.hpp"

namespace noiseflow::runtime::onnx {

namespace fs = std::filesystem;
using graph::NodeRef;
using graph::Shape;

namespace {

std::string q(const std::string& s) { return "\"" + s + "\""; }

[[noreturn]] void fail(std::string file, std::string node, std::string field, std::string code, std::string message) {
  throw ExportError(graph::Diagnostic{std::move(file), std::move(node), std::move(field), std::move(code),
                                      std::move(message)});
}

std::string dims_str(const std::vector<Dim>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? ", " : "") + (dims[i].param.empty() ? std::to_string(dims[i].value) : dims[i].param);
  return s + "]";
}

// ---- serialization (field numbers of onnx.proto) -------------------------------------------------------

ProtoWriter tensor_proto(const Initializer& t) {
  ProtoWriter w;
  for (int64_t d : t.dims) w.int_field(1, d);  // dims
  w.int_field(2, int64_t(t.type));             // data_type
  w.bytes_field(8, t.name);                    // name
  w.bytes_field(9, t.raw);                     // raw_data
  return w;
}

ProtoWriter attribute_proto(const Attribute& a) {
  ProtoWriter w;
  w.bytes_field(1, a.name);  // name
  switch (a.kind) {
    case Attribute::Kind::Float: w.float_field(2, a.f); break;      // f
    case Attribute::Kind::Int: w.int_field(3, a.i); break;          // i
    case Attribute::Kind::String: w.bytes_field(4, a.s); break;     // s
    case Attribute::Kind::Floats:
      for (float f : a.floats) w.float_field(7, f);                 // floats
      break;
    case Attribute::Kind::Ints:
      for (int64_t i : a.ints) w.int_field(8, i);                   // ints
      break;
  }
  w.int_field(20, int64_t(a.kind));  // type
  return w;
}

ProtoWriter node_proto(const OpNode& n) {
  ProtoWriter w;
  for (auto& i : n.inputs) w.bytes_field(1, i);   // input
  for (auto& o : n.outputs) w.bytes_field(2, o);  // output
  w.bytes_field(3, n.name);                       // name
  w.bytes_field(4, n.op_type);                    // op_type
  for (auto& a : n.attributes) w.message_field(5, attribute_proto(a));  // attribute
  return w;
}

ProtoWriter value_info_proto(const ValueInfo& v) {
  ProtoWriter shape;  // TensorShapeProto
  for (auto& d : v.dims) {
    ProtoWriter dim;  // TensorShapeProto.Dimension
    if (d.param.empty()) dim.int_field(1, d.value);  // dim_value
    else dim.bytes_field(2, d.param);                // dim_param
    shape.message_field(1, dim);
  }
  ProtoWriter tensor;  // TypeProto.Tensor
  tensor.int_field(1, int64_t(v.type));  // elem_type
  tensor.message_field(2, shape);        // shape
  ProtoWriter type;                      // TypeProto
  type.message_field(1, tensor);         // tensor_type
  ProtoWriter w;
  w.bytes_field(1, v.name);    // name
  w.message_field(2, type);    // type
  return w;
}

// ---- the net's file: declared input order and outputs ----------------------------------------------------

// The file's JSON in its key order; null if it cannot be read (the loader already accepted it).
nlohmann::ordered_json read_ordered(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  return nlohmann::ordered_json::parse(in, nullptr, false);
}

}  // namespace

// ---- Attribute ---------------------------------------------------------------------------------------------

Attribute Attribute::of_int(std::string name, int64_t v) {
  Attribute a;
  a.name = std::move(name), a.kind = Kind::Int, a.i = v;
  return a;
}
Attribute Attribute::of_float(std::string name, float v) {
  Attribute a;
  a.name = std::move(name), a.kind = Kind::Float, a.f = v;
  return a;
}
Attribute Attribute::of_string(std::string name, std::string v) {
  Attribute a;
  a.name = std::move(name), a.kind = Kind::String, a.s = std::move(v);
  return a;
}
Attribute Attribute::of_ints(std::string name, std::vector<int64_t> v) {
  Attribute a;
  a.name = std::move(name), a.kind = Kind::Ints, a.ints = std::move(v);
  return a;
}

// ---- Model ---------------------------------------------------------------------------------------------------

std::string Model::serialize() const {
  ProtoWriter graph;  // GraphProto
  for (auto& n : nodes) graph.message_field(1, node_proto(n));            // node
  graph.bytes_field(2, graph_name);                                       // name
  for (auto& t : initializers) graph.message_field(5, tensor_proto(t));  // initializer
  if (!doc.empty()) graph.bytes_field(10, doc);                           // doc_string
  for (auto& v : inputs) graph.message_field(11, value_info_proto(v));   // input
  for (auto& v : outputs) graph.message_field(12, value_info_proto(v));  // output

  ProtoWriter model;  // ModelProto
  model.int_field(1, kIrVersion);         // ir_version
  model.bytes_field(2, "noiseflow");      // producer_name
  model.bytes_field(3, NOISEFLOW_VERSION);  // producer_version
  if (!doc.empty()) model.bytes_field(6, doc);  // doc_string
  model.message_field(7, graph);          // graph
  ProtoWriter opset;                      // OperatorSetIdProto: the default domain ("" omitted)
  opset.int_field(2, kOpsetVersion);      // version
  model.message_field(8, opset);          // opset_import
  for (auto& [k, v] : metadata) {
    ProtoWriter e;  // StringStringEntryProto
    e.bytes_field(1, k);
    e.bytes_field(2, v);
    model.message_field(14, e);  // metadata_props
  }
  return model.take();
}

// ---- select_net ------------------------------------------------------------------------------------------------

NetSelection select_net(const graph::Graph& g, const std::string& instance) {
  NetSelection net;
  std::vector<int> placeholders;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].op == graph::kInputOp) placeholders.push_back(int(i));

  if (instance.empty() && !placeholders.empty()) {
    // A net file: its inputs are placeholders, its output what "outputs" names ("out", or the only one).
    const auto doc = read_ordered(g.file);
    const auto outs = doc.is_object() && doc.contains("outputs") ? doc["outputs"] : nlohmann::ordered_json();
    if (!outs.is_object() || outs.empty())
      fail(g.file, "", "outputs", "no_net", "a net file must declare its output (\"outputs\": {\"out\": \"node\"})");
    nlohmann::ordered_json ref;
    if (outs.size() == 1) ref = outs.begin().value();
    else if (outs.contains("out")) ref = outs["out"];
    else fail(g.file, "", "outputs", "no_net", "the net has several outputs and none named \"out\"");
    if (!ref.is_string()) fail(g.file, "", "outputs", "no_net", "expected \"node\" or \"node.output\", got " + ref.dump());
    const std::string target = ref.get<std::string>();
    auto r = g.resolve(target);
    if (!r) fail(g.file, "", "outputs", "no_net", "no node " + q(target));
    net.output = *r;
    for (int i : placeholders) net.inputs.push_back({g.nodes[i].id, NodeRef{i, 0}});
  } else {
    const std::string inst = instance.empty() ? "net" : instance;
    auto out = g.aliases.find(inst);
    if (out == g.aliases.end()) {
      std::vector<std::string> instances;
      for (auto& [name, ref] : g.aliases)
        if (name.find('.') == std::string::npos) instances.push_back(name);
      fail(g.file, "", "", "no_net",
           "no subgraph instance " + q(inst) + " (the net to export)" + graph::suggest(inst, instances) +
               ": name the instance, or export a net file such as pipelines/nets/unet_small.json");
    }
    net.prefix = inst + ".";
    net.output = out->second;
    // The instance's inputs: aliases "inst.name" that point outside the instance.
    for (auto& [name, ref] : g.aliases) {
      if (name.rfind(net.prefix, 0) != 0) continue;
      const std::string local = name.substr(net.prefix.size());
      if (local.find('.') != std::string::npos || g.nodes[ref.node].id.rfind(net.prefix, 0) == 0) continue;
      net.inputs.push_back({local, ref});
    }
  }

  // The inputs in the order the net's file declares them (x before t), else by name.
  const auto decl = read_ordered(g.nodes[net.output.node].file);
  if (decl.is_object() && decl.contains("inputs")) {
    std::vector<std::string> order;
    if (decl["inputs"].is_array())
      for (auto& n : decl["inputs"]) order.push_back(n.is_string() ? n.get<std::string>() : "");
    else if (decl["inputs"].is_object())
      for (auto& [k, v] : decl["inputs"].items()) order.push_back(k);
    auto rank = [&](const std::string& n) { return std::find(order.begin(), order.end(), n) - order.begin(); };
    std::stable_sort(net.inputs.begin(), net.inputs.end(),
                     [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  }

  // The nodes the output depends on, back to the inputs.
  std::set<int> region;
  std::vector<NodeRef> todo{net.output};
  auto is_input = [&](NodeRef r) {
    return std::any_of(net.inputs.begin(), net.inputs.end(), [&](const auto& in) { return in.second == r; });
  };
  while (!todo.empty()) {
    NodeRef r = todo.back();
    todo.pop_back();
    if (is_input(r) || region.count(r.node)) continue;
    const graph::GraphNode& n = g.nodes[r.node];
    if (n.id.rfind(net.prefix, 0) != 0 || n.op == graph::kInputOp)
      fail(n.file, n.id, "", "no_net", "the net's output depends on node " + q(n.id) + ", which is not part of it");
    region.insert(r.node);
    for (auto& in : n.inputs)
      if (in) todo.push_back(*in);
  }
  for (int i : g.order)
    if (region.count(i)) net.nodes.push_back(i);
  return net;
}

// ---- weights ----------------------------------------------------------------------------------------------------

std::vector<std::pair<std::string, Shape>> net_parameters(const graph::Graph& g, const NetSelection& net) {
  std::vector<std::pair<std::string, Shape>> params;
  for (int i : net.nodes) {
    const graph::GraphNode& n = g.nodes[i];
    for (auto& p : n.params) params.push_back({n.id.substr(net.prefix.size()) + "." + p.name, p.shape});
  }
  return params;
}

CheckpointWeights load_net_weights(const graph::Graph& g, const NetSelection& net, const std::string& path,
                                   const std::string& weights, const std::string& prefix) {
  if (weights.empty() || weights.find('.') != std::string::npos)
    fail(path, "", "weights", "bad_weights", "expected raw, ema or an EMA prefix without '.', got " + q(weights));
  SafeTensors st;
  try {
    st = read_safetensors(path);
  } catch (const CheckpointError& e) {
    std::string msg = e.what();
    if (msg.rfind(path + ": ", 0) == 0) msg = msg.substr(path.size() + 2);
    fail(path, "", "", "missing_weight", msg);
  }
  const std::string w = weights == "raw" ? "" : weights + ".";
  CheckpointWeights out;
  out.metadata = st.metadata;
  std::vector<std::string> missing;
  std::string first_message;
  for (auto& [local, shape] : net_parameters(g, net)) {
    std::vector<std::string> names{w + prefix + local};
    if (!prefix.empty()) names.push_back(w + local);
    auto it = st.tensors.end();
    for (auto& n : names)
      if ((it = st.tensors.find(n)) != st.tensors.end()) break;
    if (it == st.tensors.end()) {
      if (missing.empty()) {
        first_message = "has no tensor " + q(names[0]) + (names.size() > 1 ? " (nor " + q(names[1]) + ")" : "") +
                        " for the net's parameter " + q(local);
        const bool raw_there = st.tensors.count(prefix + local) || st.tensors.count(local);
        if (!w.empty() && raw_there)
          first_message += ": the file has raw weights but no copies named " + w + "*: export the raw weights";
      }
      missing.push_back(names[0]);
      continue;
    }
    if (it->second.shape() != shape)
      fail(path, "", "tensor " + q(it->first), "weight_shape",
           "shape " + graph::shape_str(it->second.shape()) + " but the net's parameter " + q(local) + " is " +
               graph::shape_str(shape));
    out.weights[local] = it->second;
  }
  if (!missing.empty())
    fail(path, "", "tensor " + q(missing[0]), "missing_weight",
         first_message + (missing.size() > 1 ? " (and " + std::to_string(missing.size() - 1) + " more)" : ""));
  return out;
}

// ---- op mappings and OpContext -------------------------------------------------------------------------------------

std::vector<std::string> mapped_ops() {
  std::vector<std::string> v;
  for (auto& op : Registry::global().ops())
    if (Registry::global().find(op)->onnx) v.push_back(op);
  return v;
}

OpContext::OpContext(const graph::Graph& g, const graph::GraphNode& node, std::string local_id,
                     std::vector<std::string> input_values, std::vector<std::string> output_values,
                     std::function<std::string(const std::string&, const std::vector<int64_t>&)> param_fn,
                     std::function<std::string(const Initializer&)> constant_fn, std::vector<OpNode>& nodes)
    : g_(g),
      node_(node),
      id_(std::move(local_id)),
      inputs_(std::move(input_values)),
      outputs_(std::move(output_values)),
      param_fn_(std::move(param_fn)),
      constant_fn_(std::move(constant_fn)),
      nodes_(nodes) {}

int OpContext::input_index(const std::string& port) const {
  int i = node_.schema->input_index(port);
  if (i < 0) throw std::logic_error("ONNX mapping of " + node_.op + ": no input " + port);
  return i;
}

int OpContext::output_index(const std::string& port) const {
  if (port.empty()) return 0;
  int i = node_.schema->output_index(port);
  if (i < 0) throw std::logic_error("ONNX mapping of " + node_.op + ": no output " + port);
  return i;
}

bool OpContext::has_input(const std::string& port) const { return !inputs_[size_t(input_index(port))].empty(); }

const std::string& OpContext::input(const std::string& port) const {
  const std::string& v = inputs_[size_t(input_index(port))];
  if (v.empty()) fail("input " + q(port), "is not connected");
  return v;
}

const Shape& OpContext::input_shape(const std::string& port) const {
  const auto& r = node_.inputs[size_t(input_index(port))];
  if (!r) fail("input " + q(port), "is not connected");
  return g_.shape(*r);
}

const std::string& OpContext::output(const std::string& port) const { return outputs_[size_t(output_index(port))]; }

const Shape& OpContext::output_shape(const std::string& port) const {
  return node_.output_shapes[size_t(output_index(port))];
}

std::string OpContext::param(const std::string& local, const std::vector<int64_t>& dims) {
  return param_fn_(id_ + "." + local, dims);
}

std::string OpContext::ints(const std::vector<int64_t>& values, std::optional<std::vector<int64_t>> dims) {
  Initializer t;
  t.type = DataType::Int64;
  t.dims = dims ? *dims : std::vector<int64_t>{int64_t(values.size())};
  t.raw.resize(values.size() * 8);
  for (size_t i = 0; i < values.size(); ++i)
    for (int b = 0; b < 8; ++b) t.raw[i * 8 + b] = char((uint64_t(values[i]) >> (8 * b)) & 0xff);
  return constant_fn_(t);
}

std::string OpContext::floats(const std::vector<float>& values, const std::vector<int64_t>& dims) {
  Initializer t;
  t.type = DataType::Float;
  t.dims = dims;
  t.raw.resize(values.size() * 4);
  std::memcpy(t.raw.data(), values.data(), t.raw.size());  // little-endian hosts (x86-64, aarch64)
  return constant_fn_(t);
}

void OpContext::add(const std::string& op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
                    std::vector<Attribute> attributes, const std::string& part) {
  OpNode n;
  n.op_type = op_type;
  n.name = part.empty() ? id_ : id_ + "/" + part;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  n.attributes = std::move(attributes);
  nodes_.push_back(std::move(n));
}

std::string OpContext::add_temp(const std::string& what, const std::string& op_type, std::vector<std::string> inputs,
                                std::vector<Attribute> attributes) {
  const std::string out = temp(what);
  add(op_type, std::move(inputs), {out}, std::move(attributes), what);
  return out;
}

void OpContext::fail(const std::string& field, const std::string& message, const std::string& code) const {
  onnx::fail(node_.file, node_.id, field, code, message);
}

// ---- build_model ------------------------------------------------------------------------------------------------

Model build_model(const graph::Graph& g, const NetSelection& net, const Weights& weights, const ModelOptions& options) {
  Model m;
  m.graph_name = options.graph_name.empty() ? g.name : options.graph_name;
  m.metadata = options.metadata;
  if (net.inputs.empty()) fail(g.file, "", "", "no_net", "the net has no inputs");

  // The batch: every input's first dimension and the output's, made symbolic or checked against the fixed one.
  const int64_t loaded = g.shape(net.inputs[0].second).at(0);
  auto check_batch = [&](const std::string& what, const Shape& s) {
    if (s.empty() || s[0] != loaded)
      fail(g.file, "", "", "bad_batch",
           "cannot export the batch dimension: " + what + " has shape " + graph::shape_str(s) + " but input " +
               q(net.inputs[0].first) + " " + graph::shape_str(g.shape(net.inputs[0].second)) +
               " (every input and the output must have the batch first)");
  };
  for (auto& [name, ref] : net.inputs) check_batch("input " + q(name), g.shape(ref));
  check_batch("the output", g.shape(net.output));
  if (options.batch && *options.batch != loaded)
    fail(g.file, "", "", "bad_batch",
         "batch " + std::to_string(*options.batch) + " requested but the net was loaded with batch " +
             std::to_string(loaded) + " (input " + q(net.inputs[0].first) + " " +
             graph::shape_str(g.shape(net.inputs[0].second)) + "): set the param its shapes come from (--set NAME=" +
             std::to_string(*options.batch) + ")");
  auto value_info = [&](const std::string& name, const Shape& s) {
    ValueInfo v{name, DataType::Float, {}};
    for (size_t i = 0; i < s.size(); ++i) v.dims.push_back(i == 0 && !options.batch ? Dim{0, "N"} : Dim{s[i], ""});
    return v;
  };

  // Initializers: the parameters (under their net-local names) and shared constants.
  std::set<std::string> names;
  std::map<std::string, std::string> constant_names;  // type, dims and bytes -> name
  std::set<std::string> used_params;
  std::map<std::string, Shape> declared;
  for (auto& [local, shape] : net_parameters(g, net)) declared[local] = shape;
  const graph::GraphNode* current = nullptr;
  auto param_fn = [&](const std::string& local, const std::vector<int64_t>& dims) -> std::string {
    auto d = declared.find(local);
    if (d == declared.end()) throw std::logic_error("ONNX mapping asked for an undeclared parameter " + local);
    auto w = weights.find(local);
    if (w == weights.end())
      fail(current->file, current->id, "param " + q(local), "missing_weight", "no weights for this parameter");
    if (w->second.shape() != d->second)
      fail(current->file, current->id, "param " + q(local), "weight_shape",
           "the weights have shape " + graph::shape_str(w->second.shape()) + " but the parameter is " +
               graph::shape_str(d->second));
    used_params.insert(local);
    Initializer t;
    t.dims = dims.empty() ? std::vector<int64_t>(d->second.begin(), d->second.end()) : dims;
    if (graph::numel(t.dims) != w->second.numel())
      throw std::logic_error("ONNX mapping reshapes " + local + " to another element count");
    t.name = local;
    for (int k = 1; names.count(t.name); ++k) t.name = local + "/" + std::to_string(k);
    const Tensor plain = w->second.to_plain();
    t.raw.assign(reinterpret_cast<const char*>(plain.data()), size_t(plain.numel()) * 4);
    names.insert(t.name);
    m.initializers.push_back(std::move(t));
    return m.initializers.back().name;
  };
  auto constant_fn = [&](const Initializer& c) -> std::string {
    std::string key = std::to_string(int(c.type)) + ":";
    for (auto d : c.dims) key += std::to_string(d) + ",";
    key += ":" + c.raw;
    auto it = constant_names.find(key);
    if (it != constant_names.end()) return it->second;
    Initializer t = c;
    t.name = "const/" + std::to_string(constant_names.size());
    names.insert(t.name);
    m.initializers.push_back(t);
    constant_names[key] = t.name;
    return t.name;
  };

  // The values: net inputs by name, node outputs by node id ("id", "id.output" for later outputs).
  std::map<std::pair<int, int>, std::string> value_of;
  for (auto& [name, ref] : net.inputs) value_of[{ref.node, ref.output}] = name;
  for (int i : net.nodes) {
    const graph::GraphNode& n = g.nodes[i];
    current = &n;
    const NodeType* type = Registry::global().find(n.op);
    if (!type || !type->onnx) {
      std::string list;
      for (auto& op : mapped_ops()) list += (list.empty() ? "" : ", ") + op;
      fail(n.file, n.id, "op", "unsupported_op",
           "node type " + n.op + " has no ONNX mapping (mapped: " + (list.empty() ? "none" : list) + ")");
    }
    const std::string local = n.id.substr(net.prefix.size());
    std::vector<std::string> ins, outs;
    for (auto& r : n.inputs) ins.push_back(r ? value_of.at({r->node, r->output}) : std::string());
    for (size_t o = 0; o < n.output_shapes.size(); ++o) {
      const bool is_output = net.output == NodeRef{i, int(o)};
      std::string v = is_output ? options.output_name : o == 0 ? local : local + "." + n.schema->outputs()[o].name;
      value_of[{i, int(o)}] = v;
      outs.push_back(v);
    }
    OpContext ctx(g, n, local, ins, outs, param_fn, constant_fn, m.nodes);
    type->onnx(ctx);
    for (auto& p : n.params)
      if (!used_params.count(local + "." + p.name))
        fail(n.file, n.id, "op", "unsupported_op", "the ONNX mapping of " + n.op + " leaves out parameter " + q(p.name));
  }
  // A net whose output is one of its inputs passes it through.
  const std::string& out_value = value_of.at({net.output.node, net.output.output});
  if (out_value != options.output_name)
    m.nodes.push_back(OpNode{"Identity", options.output_name, {out_value}, {options.output_name}, {}});
  // Every value is written once (a node id could collide with an input or the output's name).
  std::set<std::string> written;
  for (auto& [name, ref] : net.inputs) written.insert(name);
  for (auto& n : m.nodes)
    for (auto& o : n.outputs)
      if (!written.insert(o).second || names.count(o))
        fail(g.file, n.name, "", "bad_name", "ONNX value " + q(o) + " would be written twice: rename the node");

  for (auto& [name, ref] : net.inputs) m.inputs.push_back(value_info(name, g.shape(ref)));
  m.outputs.push_back(value_info(options.output_name, g.shape(net.output)));
  return m;
}

// ---- files ---------------------------------------------------------------------------------------------------

void write_model_file(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, {bytes}, [&](const std::string& msg) { fail(path, "", "", "write_failed", msg); });
}

ExportSummary export_onnx(const ExportRequest& r) {
  graph::LoadOptions lo;
  lo.schemas = &Registry::global();
  lo.overrides = r.params;
  graph::Graph g = graph::load_pipeline(r.net_file, lo);
  // A fixed batch goes to the file's `batch` param (unless --set gave one); the net's shapes then follow it.
  if (r.batch && g.params.is_object() && g.params.contains("batch") && !r.params.count("batch")) {
    lo.overrides["batch"] = *r.batch;
    g = graph::load_pipeline(r.net_file, lo);
  }
  const NetSelection net = select_net(g, r.instance);
  const std::string prefix = r.prefix ? *r.prefix : net.prefix.empty() ? std::string("net.") : net.prefix;
  CheckpointWeights cw = load_net_weights(g, net, r.checkpoint, r.weights, prefix);

  ModelOptions mo;
  mo.batch = r.batch;
  const auto step = cw.metadata.find("step");
  mo.metadata = {{"noiseflow.net", r.net_file + (r.instance.empty() ? "" : " (instance " + r.instance + ")")},
                 {"noiseflow.checkpoint", r.checkpoint},
                 {"noiseflow.weights", r.weights},
                 {"noiseflow.step", step == cw.metadata.end() ? "" : step->second}};
  Model m = build_model(g, net, cw.weights, mo);

  ExportSummary s;
  for (auto& v : m.inputs) s.signature += (s.signature.empty() ? "" : ", ") + v.name + " " + dims_str(v.dims);
  s.signature += " -> " + m.outputs[0].name + " " + dims_str(m.outputs[0].dims) + " (float32)";
  m.doc = m.graph_name + " exported by noiseflow from " + r.checkpoint + " (" + r.weights + " weights" +
          (step == cw.metadata.end() ? "" : ", step " + step->second) + "): " + s.signature +
          "; timesteps are float32";
  write_model_file(r.output, m.serialize());
  s.output = r.output;
  s.onnx_nodes = int64_t(m.nodes.size());
  s.initializers = int64_t(m.initializers.size());
  for (auto& [name, t] : cw.weights) s.parameters += t.numel();
  return s;
}

}  // namespace noiseflow::runtime::onnx
