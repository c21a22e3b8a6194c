// tests/runtime/export/test_onnx.cpp — runtime/export/onnx: unet-small exported with deterministic weights and
// read back with an independent protobuf reader (onnx.proto's field numbers), the net found inside a
// pipeline, checkpoint names mapped as io.load_checkpoint maps them, and the errors. That ONNX Runtime
// computes what noiseflow computes is tests/tools/test_onnx_ort.sh.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/checkpoint.hpp"
#include "runtime/export/onnx.hpp"
#include "tests/runtime/export/proto_reader.hpp"
#include "tests/test_util.hpp"

namespace fs = std::filesystem;
namespace onnx = noiseflow::runtime::onnx;
using noiseflow::runtime::Tensor;
using noiseflow::test::ProtoMessage;
using noiseflow::test::TempDir;

namespace {

const std::string kUnet = std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/nets/unet_small.json";
const std::string kMlp = std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/nets/mlp_denoiser.json";

noiseflow::graph::Graph load(const std::string& path, std::map<std::string, noiseflow::graph::Json> params = {}) {
  return noiseflow::graph::load_pipeline(path, noiseflow::test::load_options(std::move(params)));
}

// Parameter k (net_parameters order), element i: 0.05 sin(0.37 i + 1.3 k) (the golden values' formula).
onnx::Weights deterministic_weights(const noiseflow::graph::Graph& g, const onnx::NetSelection& net) {
  onnx::Weights w;
  int k = 0;
  for (auto& [name, shape] : onnx::net_parameters(g, net)) {
    Tensor t(shape);
    for (int64_t i = 0; i < t.numel(); ++i) t[i] = float(0.05 * std::sin(0.37 * double(i) + 1.3 * double(k)));
    w[name] = t;
    ++k;
  }
  return w;
}

// The error an expression throws: code and what().
template <class F>
std::pair<std::string, std::string> export_error(F&& f) {
  try {
    f();
  } catch (const onnx::ExportError& e) {
    return {e.code(), e.what()};
  }
  return {"(no error)", ""};
}

// A decoded ValueInfoProto: name, elem_type and dims (a symbolic one as its name).
struct Value {
  std::string name;
  int64_t elem_type = 0;
  std::vector<std::string> dims;
};
Value value_info(const ProtoMessage& v) {
  Value out{v.str(1), 0, {}};
  const ProtoMessage tensor = v.message(2).message(1);  // TypeProto.tensor_type
  out.elem_type = tensor.integer(1);
  for (auto& d : tensor.message(2).messages(1))  // TensorShapeProto.dim
    out.dims.push_back(d.has(2) ? d.str(2) : std::to_string(d.integer(1)));
  return out;
}

// The attributes of a NodeProto by name.
std::map<std::string, ProtoMessage> attributes(const ProtoMessage& node) {
  std::map<std::string, ProtoMessage> a;
  for (auto& m : node.messages(5)) a.emplace(m.str(1), m);
  return a;
}

// A decoded model: the graph's parts (views into its own copy of the bytes).
struct Decoded {
  std::string bytes;
  ProtoMessage model;
  ProtoMessage graph;
  std::vector<ProtoMessage> nodes, initializers;
  std::map<std::string, ProtoMessage> init_by_name;
  explicit Decoded(std::string b)
      : bytes(std::move(b)), model(bytes), graph(model.message(7)), nodes(graph.messages(1)),
        initializers(graph.messages(5)) {
    for (auto& t : initializers) init_by_name.emplace(t.str(8), t);
  }
  Decoded(const Decoded&) = delete;
  Decoded& operator=(const Decoded&) = delete;
  const ProtoMessage* node(const std::string& name) const {
    for (auto& n : nodes)
      if (n.str(3) == name) return &n;
    return nullptr;
  }
  std::map<std::string, int> op_counts() const {
    std::map<std::string, int> c;
    for (auto& n : nodes) ++c[n.str(4)];
    return c;
  }
};

std::vector<int64_t> int64_data(const ProtoMessage& tensor) {
  const std::string raw = tensor.str(9);
  std::vector<int64_t> v(raw.size() / 8);
  std::memcpy(v.data(), raw.data(), raw.size());
  return v;
}

// A checkpoint holding the net's parameters under "net." names (deterministic values).
std::string write_checkpoint(const TempDir& dir, const noiseflow::graph::Graph& g, const onnx::NetSelection& net,
                             const std::string& name = "ck.safetensors") {
  noiseflow::runtime::NamedTensorList list;
  for (auto& [local, t] : deterministic_weights(g, net)) list.push_back({"net." + local, t});
  const std::string path = dir / name;
  noiseflow::runtime::write_safetensors(path, list, {{"step", "7"}});
  return path;
}

}  // namespace

TEST_CASE("export onnx: unet-small becomes a valid opset-17 model with every weight") {
  const auto g = load(kUnet);
  const auto net = onnx::select_net(g);
  REQUIRE(net.inputs.size() == 2);
  CHECK(net.inputs[0].first == "x");  // the file's declared order
  CHECK(net.inputs[1].first == "t");
  CHECK(net.prefix.empty());
  CHECK(g.nodes[net.output.node].id == "out_conv");
  const auto params = onnx::net_parameters(g, net);
  CHECK(params.size() == 214);
  const auto weights = deterministic_weights(g, net);
  const std::string bytes = onnx::build_model(g, net, weights).serialize();
  const Decoded d(bytes);

  SUBCASE("model header") {
    CHECK(d.model.integer(1) == 8);  // ir_version
    CHECK(d.model.str(2) == "noiseflow");
    const auto opsets = d.model.messages(8);
    REQUIRE(opsets.size() == 1);
    CHECK(opsets[0].str(1).empty());  // the default ONNX domain
    CHECK(opsets[0].integer(2) == 17);
    CHECK(d.graph.str(2) == "unet_small");
  }

  SUBCASE("inputs x [N, 1, 28, 28] and t [N], output eps [N, 1, 28, 28], all float32") {
    const auto ins = d.graph.messages(11), outs = d.graph.messages(12);
    REQUIRE(ins.size() == 2);
    REQUIRE(outs.size() == 1);
    const Value x = value_info(ins[0]), t = value_info(ins[1]), eps = value_info(outs[0]);
    CHECK(x.name == "x");
    CHECK(x.dims == std::vector<std::string>{"N", "1", "28", "28"});
    CHECK(t.name == "t");
    CHECK(t.dims == std::vector<std::string>{"N"});
    CHECK(eps.name == "eps");
    CHECK(eps.dims == std::vector<std::string>{"N", "1", "28", "28"});
    CHECK(x.elem_type == 1);
    CHECK(t.elem_type == 1);
    CHECK(eps.elem_type == 1);
  }

  SUBCASE("the ONNX nodes of every noiseflow node") {
    // 50 nn.conv2d + attention's qkv and proj; 35 group norms + attention's; 2 nn.silu + 35 fused SiLUs; Mul:
    // 37 SiLUs, 36 group-norm scales, the embedding's angles and the attention scale; Add: 36 group-norm
    // shifts, 34 nn.add, the attention residual; Reshape: 2 per group norm, 2 in the attention; Unsqueeze:
    // 17 leading adds and t; Concat: 9 skips and [sin, cos].
    const std::map<std::string, int> want{
        {"Add", 71},     {"Concat", 10},    {"Conv", 52},   {"Cos", 1},      {"Gather", 3},
        {"Gemm", 19},    {"InstanceNormalization", 36},     {"MatMul", 2},   {"Mul", 75},
        {"Reshape", 74}, {"Resize", 2},     {"Sigmoid", 37}, {"Sin", 1},     {"Softmax", 1},
        {"Transpose", 2}, {"Unsqueeze", 18}};
    CHECK(d.op_counts() == want);
    CHECK(d.nodes.size() == 404);
  }

  SUBCASE("topological order: every input is a graph input, an initializer or an earlier output") {
    std::set<std::string> known{"x", "t"};
    for (auto& [name, t] : d.init_by_name) known.insert(name);
    CHECK(d.init_by_name.size() == d.initializers.size());  // distinct names
    for (auto& n : d.nodes) {
      for (auto& in : n.strings(1)) {
        INFO("node ", n.str(3), " (", n.str(4), ") input ", in);
        CHECK((in.empty() || known.count(in)));
      }
      for (auto& out : n.strings(2)) {
        INFO("node ", n.str(3), " output ", out);
        CHECK(known.insert(out).second);
      }
    }
    CHECK(known.count("eps"));
  }

  SUBCASE("every parameter is an initializer under its net-local name with its values") {
    int64_t elements = 0;
    for (auto& [name, shape] : params) {
      INFO(name);
      auto it = d.init_by_name.find(name);
      REQUIRE(it != d.init_by_name.end());
      const auto& t = it->second;
      CHECK(t.integer(2) == 1);  // FLOAT
      std::vector<int64_t> dims = t.integers(1);
      // Group-norm scales and shifts broadcast over H and W: [C] stored as [C, 1, 1].
      const bool norm = name.find("norm") != std::string::npos;
      std::vector<int64_t> want(shape.begin(), shape.end());
      if (norm) want = {shape[0], 1, 1};
      CHECK(dims == want);
      const std::string raw = t.str(9);
      REQUIRE(raw.size() == size_t(noiseflow::graph::numel(shape)) * 4);
      CHECK(std::memcmp(raw.data(), weights.at(name).data(), raw.size()) == 0);
      elements += noiseflow::graph::numel(shape);
    }
    CHECK(elements == 1539329);
    CHECK(d.init_by_name.at("stem.weight").integers(1) == std::vector<int64_t>{32, 1, 3, 3});
    CHECK(d.init_by_name.at("down.3.skip.weight").integers(1) == std::vector<int64_t>{64, 32, 1, 1});
    CHECK(d.init_by_name.at("mid_attn.qkv.weight").integers(1) == std::vector<int64_t>{192, 64, 1, 1});
    CHECK(d.init_by_name.at("temb1.weight").integers(1) == std::vector<int64_t>{128, 32});
  }

  SUBCASE("attributes: convolution geometry, resize, softmax axis, group-norm reshapes") {
    const ProtoMessage* stem = d.node("stem");
    REQUIRE(stem);
    CHECK(stem->str(4) == "Conv");
    CHECK(stem->strings(1) == std::vector<std::string>{"x", "stem.weight", "stem.bias"});
    auto a = attributes(*stem);
    CHECK(a.at("kernel_shape").integers(8) == std::vector<int64_t>{3, 3});
    CHECK(a.at("pads").integers(8) == std::vector<int64_t>{1, 1, 1, 1});
    CHECK(a.at("strides").integers(8) == std::vector<int64_t>{1, 1});
    CHECK(a.at("kernel_shape").integer(20) == 7);  // INTS
    CHECK(attributes(*d.node("down.2.conv")).at("strides").integers(8) == std::vector<int64_t>{2, 2});
    CHECK(attributes(*d.node("down.3.skip")).at("pads").integers(8) == std::vector<int64_t>{0, 0, 0, 0});

    const ProtoMessage* up = d.node("up.3.up");
    REQUIRE(up);
    CHECK(up->str(4) == "Resize");
    auto ra = attributes(*up);
    CHECK(ra.at("mode").str(4) == "nearest");
    CHECK(ra.at("nearest_mode").str(4) == "floor");
    CHECK(ra.at("coordinate_transformation_mode").str(4) == "asymmetric");
    CHECK(ra.at("mode").integer(20) == 3);  // STRING

    const ProtoMessage* sm = d.node("mid_attn/weights");
    REQUIRE(sm);
    CHECK(sm->str(4) == "Softmax");
    CHECK(attributes(*sm).at("axis").integer(3) == -1);  // a negative int64: ten-byte varint

    const ProtoMessage* grouped = d.node("down.0.norm1/norm_grouped");
    REQUIRE(grouped);
    CHECK(grouped->strings(1)[0] == "stem");
    CHECK(int64_data(d.init_by_name.at(grouped->strings(1)[1])) == std::vector<int64_t>{0, 8, -1});
    const ProtoMessage* in = d.node("down.0.norm1/norm_instance_norm");
    REQUIRE(in);
    CHECK(attributes(*in).at("epsilon").one(2).as_float() == doctest::Approx(1e-5));
    // The fused SiLU ends the group norm: its Mul writes the node's value.
    const ProtoMessage* act = d.node("down.0.norm1/silu");
    REQUIRE(act);
    CHECK(act->str(4) == "Mul");
    CHECK(act->strings(2) == std::vector<std::string>{"down.0.norm1"});
    // A convolution's channel_add: the embedding [N, C] made [N, C, 1, 1] and added after the Conv; its add
    // (the residual) added last, writing the node's value.
    const ProtoMessage* lead = d.node("down.0.conv1/channel_add_nc11");
    REQUIRE(lead);
    CHECK(lead->str(4) == "Unsqueeze");
    CHECK(lead->strings(1)[0] == "down.0.temb");
    CHECK(int64_data(d.init_by_name.at(lead->strings(1)[1])) == std::vector<int64_t>{2, 3});
    const ProtoMessage* chan = d.node("down.0.conv1/channel_add");
    REQUIRE(chan);
    CHECK(chan->str(4) == "Add");
    CHECK(chan->strings(2) == std::vector<std::string>{"down.0.conv1"});
    const ProtoMessage* res = d.node("down.0.conv2/add");
    REQUIRE(res);
    CHECK(res->str(4) == "Add");
    CHECK(res->strings(1)[1] == "stem");  // the block's input: the residual
    CHECK(res->strings(2) == std::vector<std::string>{"down.0.conv2"});
    // The output conv writes eps.
    CHECK(d.node("out_conv")->strings(2) == std::vector<std::string>{"eps"});
  }

  SUBCASE("a fixed batch") {
    onnx::ModelOptions o;
    o.batch = 2;  // the batch the net file was loaded with
    const Decoded fixed(onnx::build_model(g, net, weights, o).serialize());
    CHECK(value_info(fixed.graph.messages(11)[0]).dims == std::vector<std::string>{"2", "1", "28", "28"});
    CHECK(value_info(fixed.graph.messages(12)[0]).dims == std::vector<std::string>{"2", "1", "28", "28"});
    o.batch = 3;
    auto [code, what] = export_error([&] { onnx::build_model(g, net, weights, o); });
    CHECK(code == "bad_batch");
    CHECK(what == kUnet + ": batch 3 requested but the net was loaded with batch 2 (input \"x\" [2, 1, 28, 28]): "
                          "set the param its shapes come from (--set NAME=3)");
  }
}

TEST_CASE("export onnx: the net instance inside a pipeline is the same model") {
  const auto file = load(kUnet);
  const auto pipe = load(std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/bench_unet_forward.json", {{"batch", 2}});
  const auto fnet = onnx::select_net(file);
  const auto pnet = onnx::select_net(pipe);  // instance "net" by default
  CHECK(pnet.prefix == "net.");
  REQUIRE(pnet.inputs.size() == 2);
  CHECK(pnet.inputs[0].first == "x");
  CHECK(pipe.nodes[pnet.inputs[0].second.node].op == "random.normal");
  CHECK(pnet.inputs[1].first == "t");
  CHECK(pipe.nodes[pnet.inputs[1].second.node].op == "tick");
  CHECK(pnet.nodes.size() == fnet.nodes.size());  // the sources of x and t are not part of it
  auto sorted = [](auto v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  CHECK(sorted(onnx::net_parameters(pipe, pnet)) == sorted(onnx::net_parameters(file, fnet)));

  const Decoded a(onnx::build_model(file, fnet, deterministic_weights(file, fnet)).serialize());
  const Decoded b(onnx::build_model(pipe, pnet, deterministic_weights(pipe, pnet)).serialize());
  CHECK(a.op_counts() == b.op_counts());
  // The same ONNX nodes with the same inputs (the topological orders of the two graphs may differ, and with
  // them the numbering of the shared constants: those compare by value).
  auto by_name = [](const Decoded& d) {
    std::map<std::string, std::vector<std::string>> m;
    for (auto& n : d.nodes) {
      std::vector<std::string> ins = n.strings(1);
      for (auto& in : ins)
        if (in.rfind("const/", 0) == 0) in = "const " + d.init_by_name.at(in).str(9);
      m[n.str(3) + " " + n.str(4)] = ins;
    }
    return m;
  };
  const auto an = by_name(a), bn = by_name(b);
  CHECK(an.size() == a.nodes.size());
  CHECK(an == bn);
  CHECK(b.graph.str(2) == "bench_unet_forward");

  auto [code, what] = export_error([&] { onnx::select_net(pipe, "unet"); });
  CHECK(code == "no_net");
  CHECK(what == std::string(NOISEFLOW_SOURCE_DIR) +
                    "/pipelines/bench_unet_forward.json: no subgraph instance \"unet\" (the net to export) (did you "
                    "mean \"net\"?): name the instance, or export a net file such as pipelines/nets/unet_small.json");
}

TEST_CASE("export onnx: checkpoint names as io.load_checkpoint maps them (raw, ema, an EMA prefix, no prefix)") {
  TempDir dir;
  const auto g = load(kMlp);
  const auto net = onnx::select_net(g);
  const auto params = onnx::net_parameters(g, net);
  REQUIRE(params.size() == 10);
  // Raw weights 1, EMA copies 2, the copies of an optim.ema with prefix "slow" 3.
  noiseflow::runtime::NamedTensorList list, stripped;
  for (auto& [local, shape] : params) {
    Tensor one(shape), two(shape), three(shape);
    one.fill(1.f), two.fill(2.f), three.fill(3.f);
    list.push_back({"net." + local, one});
    list.push_back({"ema.net." + local, two});
    list.push_back({"slow.net." + local, three});
    stripped.push_back({local, three});
  }
  const std::string ck = dir / "ck.safetensors", torch_style = dir / "stripped.safetensors";
  noiseflow::runtime::write_safetensors(ck, list, {{"step", "12"}});
  noiseflow::runtime::write_safetensors(torch_style, stripped, {});

  auto first_value = [&](const std::string& path, const std::string& weights, const std::string& prefix) {
    auto cw = onnx::load_net_weights(g, net, path, weights, prefix);
    CHECK(cw.weights.size() == 10);
    std::set<float> seen;
    for (auto& [name, t] : cw.weights)
      for (int64_t i = 0; i < t.numel(); ++i) seen.insert(t[i]);
    REQUIRE(seen.size() == 1);
    return *seen.begin();
  };
  CHECK(first_value(ck, "raw", "net.") == 1.f);
  CHECK(first_value(ck, "ema", "net.") == 2.f);
  CHECK(first_value(ck, "slow", "net.") == 3.f);
  CHECK(first_value(torch_style, "raw", "net.") == 3.f);  // names without the prefix
  CHECK(onnx::load_net_weights(g, net, ck, "raw", "net.").metadata.at("step") == "12");

  // Missing EMA copies: the first missing tensor, a hint, and how many more.
  const std::string first = params[0].first;
  auto [code, what] = export_error([&] { onnx::load_net_weights(g, net, torch_style, "ema", "net."); });
  CHECK(code == "missing_weight");
  CHECK(what == torch_style + ": tensor \"ema.net." + first + "\": has no tensor \"ema.net." + first + "\" (nor \"ema." +
                    first + "\") for the net's parameter \"" + first +
                    "\": the file has raw weights but no copies named ema.*: export the raw weights (and 9 more)");

  // A tensor of the wrong shape.
  noiseflow::runtime::NamedTensorList bad = stripped;
  for (auto& [name, t] : bad)
    if (name == "in.weight") t = Tensor({3, 3});
  const std::string bad_path = dir / "bad.safetensors";
  noiseflow::runtime::write_safetensors(bad_path, bad, {});
  auto [code2, what2] = export_error([&] { onnx::load_net_weights(g, net, bad_path, "raw", "net."); });
  CHECK(code2 == "weight_shape");
  CHECK(what2 == bad_path + ": tensor \"in.weight\": shape [3, 3] but the net's parameter \"in.weight\" is [128, 2]");

  // A weights choice io.load_checkpoint would reject too.
  auto [code4, what4] = export_error([&] { onnx::load_net_weights(g, net, ck, "ema.net", "net."); });
  CHECK(code4 == "bad_weights");
  CHECK(what4 == ck + ": weights: expected raw, ema or an EMA prefix without '.', got \"ema.net\"");

  // Not a checkpoint.
  const std::string junk = dir.write("junk.safetensors", "not a safetensors file");
  auto [code3, what3] = export_error([&] { onnx::load_net_weights(g, net, junk, "raw", "net."); });
  CHECK(code3 == "missing_weight");
  CHECK(what3.rfind(junk + ": header length", 0) == 0);
}

TEST_CASE("export onnx: a node type without a mapping is an error naming the node and its type") {
  TempDir dir;
  const std::string file = dir.write("net.json", R"({
    "noiseflow": 1, "name": "odd_net",
    "inputs": { "x": { "shape": [2, 4] } },
    "outputs": { "out": "odd" },
    "nodes": {
      "lin": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
      "odd": { "op": "tensor.scale", "inputs": { "x": "lin" }, "attrs": { "a": 2 } }
    }
  })");
  const auto g = load(file);
  const auto net = onnx::select_net(g);
  auto [code, what] = export_error([&] { onnx::build_model(g, net, deterministic_weights(g, net)); });
  CHECK(code == "unsupported_op");
  // The list is the registry's node types with a mapping (onnx::mapped_ops()), every nn.* one of the nets among
  // them: a mapping that does not reach the registry shows here, and a node type added with its own mapping
  // needs no edit of this test.
  const std::vector<std::string> mapped = onnx::mapped_ops();
  for (const char* op : {"nn.add", "nn.attention", "nn.concat", "nn.conv2d", "nn.flatten", "nn.group_norm", "nn.linear",
                         "nn.pool2d", "nn.relu", "nn.silu", "nn.timestep_embedding", "nn.upsample"})
    CHECK_MESSAGE(std::find(mapped.begin(), mapped.end(), op) != mapped.end(), op, " has no ONNX mapping");
  std::string list;
  for (auto& op : mapped) list += (list.empty() ? "" : ", ") + op;
  CHECK(what == file + ": node \"odd\", op: node type tensor.scale has no ONNX mapping (mapped: " + list + ")");
  // A net file whose output is not a node reference.
  const std::string bad = dir.write("bad_out.json", R"({
    "noiseflow": 1, "inputs": { "x": { "shape": [2, 4] } }, "outputs": { "out": 5 },
    "nodes": { "lin": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } } }
  })");
  auto [code3, what3] = export_error([&] { onnx::select_net(load(bad)); });
  CHECK(code3 == "no_net");
  CHECK(what3 == bad + ": outputs: expected \"node\" or \"node.output\", got 5");
  // Weights missing for a mapped node are an error too.
  auto [code2, what2] = export_error([&] { onnx::build_model(g, net, {}); });
  CHECK(code2 == "missing_weight");
  CHECK(what2 == file + ": node \"lin\", param \"lin.weight\": no weights for this parameter");
}

TEST_CASE("export onnx: export_onnx writes the file atomically at a fixed batch") {
  TempDir dir;
  const auto g = load(kUnet);
  const std::string ck = write_checkpoint(dir, g, onnx::select_net(g));
  onnx::ExportRequest r;
  r.net_file = kUnet;
  r.checkpoint = ck;
  r.weights = "raw";
  r.batch = 5;  // sets the file's batch param
  r.output = dir / "out/unet.onnx";  // the folder is created
  const auto s = onnx::export_onnx(r);
  CHECK(s.output == r.output);
  CHECK(s.parameters == 1539329);
  CHECK(s.onnx_nodes == 404);
  CHECK(s.signature == "x [5, 1, 28, 28], t [5] -> eps [5, 1, 28, 28] (float32)");
  CHECK_FALSE(fs::exists(r.output + ".tmp"));
  const Decoded d(noiseflow::test::read_bytes(r.output));
  CHECK(value_info(d.graph.messages(11)[0]).dims == std::vector<std::string>{"5", "1", "28", "28"});
  std::map<std::string, std::string> meta;
  for (auto& e : d.model.messages(14)) meta[e.str(1)] = e.str(2);
  CHECK(meta.at("noiseflow.step") == "7");
  CHECK(meta.at("noiseflow.weights") == "raw");
  CHECK(d.model.str(6).find("x [5, 1, 28, 28], t [5] -> eps [5, 1, 28, 28]") != std::string::npos);

  // EMA copies asked of a file without them.
  r.weights = "ema";
  auto [code, what] = export_error([&] { onnx::export_onnx(r); });
  CHECK(code == "missing_weight");
  CHECK(what.find("export the raw weights (and 213 more)") != std::string::npos);

  // An output that cannot be written names the file.
  r.weights = "raw";
  r.output = dir.write("a_file", "x") + "/unet.onnx";
  auto [code2, what2] = export_error([&] { onnx::export_onnx(r); });
  CHECK(code2 == "write_failed");
  CHECK(what2.rfind(r.output + ": cannot create folder", 0) == 0);
}
