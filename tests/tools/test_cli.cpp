// tests/tools/test_cli.cpp — the built `noiseflow` command, run as a user would.
#include <doctest/doctest.h>

#include <cmath>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <stb/stb_image.h>

#include "nodes/draw/loss_plot.hpp"
#include "runtime/checkpoint.hpp"
#include "runtime/export/onnx.hpp"
#include "runtime/node.hpp"
#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

namespace fs = std::filesystem;

namespace {

using noiseflow::test::TempDir;
using noiseflow::test::Result;
using noiseflow::test::run_cli;

// The node types nodes/ registers: lines of nodes/**/*.cpp that begin with NOISEFLOW_REGISTER_NODE( (so a
// comment naming the macro does not count).
size_t registrations_in_sources() {
  const std::string macro = "NOISEFLOW_REGISTER_NODE(";
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(NOISEFLOW_SOURCE_DIR "/nodes")) {
    if (!e.is_regular_file() || e.path().extension() != ".cpp") continue;
    std::istringstream in(noiseflow::test::read_bytes(e.path().string()));
    for (std::string line; std::getline(in, line);) {
      const size_t start = line.find_first_not_of(" \t");
      if (start != std::string::npos && line.compare(start, macro.size(), macro) == 0) ++n;
    }
  }
  return n;
}

}  // namespace

TEST_CASE("noiseflow check prints every edge with its shape") {
  auto r = run_cli("check pipelines/forward_process.json");
  INFO("stderr: ", r.err);
  CHECK(r.status == 0);
  CHECK(r.out.find("  sched.table -> t.schedule  [8, 1000]\n") != std::string::npos);
  CHECK(r.out.find("  eps.y -> xt.noise  [48, 1, 28, 28]\n") != std::string::npos);
  CHECK(r.out.find("  x0.y -> t.like  [48, 1, 28, 28]\n") != std::string::npos);
  CHECK(r.out.find("  xt.xt -> write.images  [48, 1, 28, 28]\n") != std::string::npos);
  CHECK(r.out.find("  t.t -> write.col_labels  [48]\n") != std::string::npos);
  CHECK(r.out.find("pipelines/forward_process.json: ok: 7 nodes, 10 edges, 1 ticks\n") != std::string::npos);
  CHECK(r.out.find("trainable parameters: 0\n") != std::string::npos);

  // --set reaches the shapes.
  auto r2 = run_cli("check pipelines/forward_process.json --set digits=2 --set kind=cosine");
  INFO("stderr: ", r2.err);
  CHECK(r2.status == 0);
  CHECK(r2.out.find("  eps.y -> xt.noise  [12, 1, 28, 28]\n") != std::string::npos);

  // ... and so does a shape rule's complaint about it.
  auto r3 = run_cli("check pipelines/forward_process.json --set T=50");
  CHECK(r3.status == 1);
  CHECK(r3.out.empty());
  CHECK(r3.err == "pipelines/forward_process.json: node \"t\", attr \"values\": values[1] = 100 is outside [0, T) with "
                  "T = 50 (schedule shape [8, 50])\nnoiseflow: 1 error\n");
}

TEST_CASE("noiseflow nodes lists every registered op") {
  auto r = run_cli("nodes");
  CHECK(r.status == 0);
  auto& reg = noiseflow::runtime::Registry::global();
  // As many node types as the sources of nodes/ register: a registration dropped by the linker fails here,
  // and a node added or removed needs no edit of this line.
  REQUIRE(reg.size() == registrations_in_sources());
  for (auto& op : reg.ops()) {
    INFO(op);
    CHECK((r.out.rfind(op + " — ", 0) == 0 || r.out.find("\n" + op + " — ") != std::string::npos));
  }
  // The last line counts them.
  std::string count = std::to_string(reg.size());
  count += " node types\n";
  REQUIRE(r.out.size() > count.size());
  CHECK(r.out.substr(r.out.size() - count.size()) == count);
  CHECK(r.out.find("    attr kind (string, default \"linear\", one of linear cosine sigmoid)") != std::string::npos);

  auto j = run_cli("nodes --json");
  CHECK(j.status == 0);
  auto all = nlohmann::json::parse(j.out);
  CHECK(all.size() == reg.size());
}

TEST_CASE("a malformed pipeline: non-zero exit and the error lines on stderr") {
  TempDir dir;
  const std::string path = dir.write("bad.json", R"({ "noiseflow": 1,
    "nodes": {
      "sched": { "op": "diffusion.schedule", "attrs": { "kind": "cosin" } },
      "x":     { "op": "random.normal", "attrs": { "shape": [2], "std": -1 } }
    } })");
  for (const char* cmd : {"check", "run", "dot"}) {
    CAPTURE(cmd);
    auto r = run_cli(std::string(cmd) + " '" + path + "'");
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(r.err == path + R"(: node "sched", attr "kind": value "cosin" is not one of "linear", "cosine", "sigmoid" (did you mean "cosine"?))" "\n" +
                       path + R"(: node "x", attr "std": value -1 is below the minimum 0)" "\n"
                       "noiseflow: 2 errors\n");
  }
  auto syntax = run_cli("check '" + dir.write("syntax.json", "{\n  \"noiseflow\": 1,\n  \"nodes\": {\n}") + "'");
  CHECK(syntax.status == 1);
  CHECK(syntax.err.find((dir.path / "syntax.json").string() + ":4:2: syntax error") == 0);
  CHECK(syntax.err.find("noiseflow: 1 error\n") != std::string::npos);

  auto missing = run_cli("check pipelines/no_such_file.json");
  CHECK(missing.status == 1);
  CHECK(missing.err == "pipelines/no_such_file.json: no such pipeline file\nnoiseflow: 1 error\n");
}

TEST_CASE("run with an unknown --set param fails before running") {
  auto r = run_cli("run pipelines/forward_process.json --set digitz=4 -q");
  CHECK(r.status == 1);
  CHECK(r.err == "pipelines/forward_process.json: params: unknown param \"digitz\" (did you mean \"digits\"?)\n"
                 "noiseflow: 1 error\n");

  auto bad = run_cli("run pipelines/forward_process.json --set digits -q");
  CHECK(bad.status == 1);
  CHECK(bad.err == "--set: \"digits\": expected key=value (e.g. --set batch=128)\nnoiseflow: 1 error\n");

  auto type = run_cli("check pipelines/forward_process.json --set digits=many");
  CHECK(type.status == 1);
  CHECK(type.err == "pipelines/forward_process.json: params: param \"digits\" expects an integer, got \"many\"\n"
                    "noiseflow: 1 error\n");
}

TEST_CASE("noiseflow dot prints Graphviz") {
  auto r = run_cli("dot pipelines/forward_process.json");
  CHECK(r.status == 0);
  CHECK(r.out.rfind("digraph", 0) == 0);
  for (const char* id : {"data", "x0", "sched", "t", "eps", "xt", "write"})
    CHECK(r.out.find(std::string("[label=\"") + id + "\\n") != std::string::npos);
  CHECK(r.out.find("[48, 1, 28, 28]") != std::string::npos);
}

TEST_CASE("usage errors") {
  auto r = run_cli("");
  CHECK(r.status != 0);
  auto r2 = run_cli("frobnicate x.json");
  CHECK(r2.status != 0);
}

TEST_CASE("sampling without a trained checkpoint says how to make one") {
  auto r = run_cli("run pipelines/sample.json --set checkpoint=runs/none/missing.safetensors -q");
  CHECK(r.status == 1);
  CHECK(r.err.find("pipelines/sample.json: node \"load\", attr \"path\": no checkpoint at runs/none/missing.safetensors: "
                   "train a model first: noiseflow run pipelines/train.json (or pass --set checkpoint=PATH)") !=
        std::string::npos);
  auto d = run_cli("run pipelines/sample_ddim.json --set checkpoint=runs/none/missing.safetensors -q");
  CHECK(d.status == 1);
  CHECK(d.err.find("no checkpoint at runs/none/missing.safetensors") != std::string::npos);
}

TEST_CASE("sampling with a checkpoint of another net names the mismatch") {
  TempDir dir;
  // A toy checkpoint (MLP weights) is not a unet-small checkpoint.
  auto train = run_cli("run pipelines/examples/toy2d_train.json --ticks 2 -q --set checkpoint=" + (dir.path / "toy.safetensors").string());
  REQUIRE(train.status == 0);
  auto r = run_cli("run pipelines/sample.json -q --set checkpoint=" + (dir.path / "toy.safetensors").string());
  CHECK(r.status == 1);
  INFO(r.err);
  CHECK(r.err.find("pipelines/sample.json: node \"load\", attr \"path\": ") != std::string::npos);
  CHECK(r.err.find("toy.safetensors: has no tensor \"ema.net.") != std::string::npos);
  CHECK(r.err.find("needed by the pipeline") != std::string::npos);
}

TEST_CASE("sample.json: a 2-sample smoke run of every sampler on a 2-tick checkpoint writes finite samples") {
  TempDir dir;
  const std::string ckpt = (dir.path / "ckpt.safetensors").string();
  const std::string folder = " --run-folder " + (dir.path / "run").string();
  auto train = run_cli("run pipelines/train.json --ticks 2 -q --set batch=2 --set checkpoint=" + ckpt + folder);
  REQUIRE(train.status == 0);
  for (const char* sampler : {"ddpm", "ddim", "euler", "euler_a", "heun", "dpmpp_2m", "dpmpp_2m_sde", "unipc"}) {
    CAPTURE(std::string(sampler));
    const std::string out = (dir.path / sampler).string();
    auto r = run_cli(std::string("run pipelines/sample.json -q") + folder + " --set n=2 --set steps=3 --set spacing=karras" +
                     " --set sampler=" + sampler + " --set checkpoint=" + ckpt + " --set samples=" + out +
                     ".png --set trajectory=" + out + "_traj.png --set samples_file=" + out + ".safetensors");
    INFO(r.err);
    REQUIRE(r.status == 0);
    CHECK(std::filesystem::exists(out + ".png"));
    CHECK(std::filesystem::exists(out + "_traj.png"));
    const auto file = noiseflow::runtime::read_safetensors(out + ".safetensors");
    const auto& x = file.tensors.at("samples");
    CHECK(x.shape() == noiseflow::runtime::Shape{2, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::isfinite(x[i]));
  }
  // An unknown sampler names the param's choice.
  auto bad = run_cli("check pipelines/sample.json --set sampler=dpmpp_3m");
  CHECK(bad.status == 1);
  CHECK(bad.err.find("unknown node type \"sampler.dpmpp_3m\" (from \"sampler.${sampler}\")") != std::string::npos);
}

TEST_CASE("train.json --set net=FILE trains a net noiseflow net unet wrote, and sample.json samples it with the same net") {
  TempDir dir;
  const std::string net = (dir.path / "tiny_unet.json").string(), ckpt = (dir.path / "ckpt.safetensors").string();
  const std::string folder = " --run-folder " + (dir.path / "run").string();
  auto gen = run_cli("net unet --name tiny_unet --ch 8 --mult 1,2 --res-blocks 1 --no-mid-attn --res-block " +
                     std::string(NOISEFLOW_SOURCE_DIR) + "/pipelines/nets/res_block.json -o " + net);
  INFO(gen.err);
  REQUIRE(gen.status == 0);
  auto train = run_cli("run pipelines/train.json --ticks 2 -q --set batch=2 --set shift=2 --set net=" + net +
                       " --set checkpoint=" + ckpt + folder);
  INFO(train.err);
  REQUIRE(train.status == 0);
  // The checkpoint holds the tiny net's weights: its stem has 8 output channels, not unet-small's 32.
  const auto file = noiseflow::runtime::read_safetensors(ckpt);
  CHECK(file.tensors.at("ema.net.stem.weight").shape()[0] == 8);
  const std::string out = (dir.path / "s").string();
  const std::string sample = "run pipelines/sample.json -q" + folder + " --set n=2 --set steps=2 --set sampler=ddim" +
                             " --set checkpoint=" + ckpt + " --set samples=" + out + ".png --set trajectory=" + out +
                             "_traj.png --set samples_file=" + out + ".safetensors";
  auto same = run_cli(sample + " --set net=" + net);
  INFO(same.err);
  CHECK(same.status == 0);
  CHECK(noiseflow::runtime::read_safetensors(out + ".safetensors").tensors.at("samples").shape() ==
        noiseflow::runtime::Shape{2, 1, 28, 28});
  // With the default net (unet-small) the checkpoint does not fit: an error naming the loader and the file.
  auto other = run_cli(sample);
  CHECK(other.status == 1);
  CHECK(other.err.find("pipelines/sample.json: node \"load\", attr \"path\": " + ckpt) != std::string::npos);
}

TEST_CASE("train.json --set shift=K translates the training digits: the first tick's gradient changes, and K = 0 does not") {
  TempDir dir;
  auto first_grad_norm = [&](const std::string& name, const std::string& sets) {
    const std::string run = (dir.path / name).string();
    auto r = run_cli("run pipelines/train.json -q --set steps=1 --set minutes=0 --set batch=4 --set preview=false --set checkpoint=" + run +
                     "/ck.safetensors --run-folder " + run + sets);
    INFO(r.err);
    REQUIRE(r.status == 0);
    std::ifstream log(run + "/log.csv");
    std::string line;
    std::getline(log, line);  // the header
    REQUIRE(std::getline(log, line));
    // tick,loss,lr,grad_norm,...: the gradient norm. The first tick's loss cannot tell: the net's output
    // conv starts at zero, so its prediction (and the loss) does not depend on the images yet.
    size_t a = 0;
    for (int field = 0; field < 3; ++field) a = line.find(',', a) + 1;
    return line.substr(a, line.find(',', a) - a);
  };
  const std::string none = first_grad_norm("none", ""), zero = first_grad_norm("zero", " --set shift=0"),
                    two = first_grad_norm("two", " --set shift=2");
  CHECK(none == zero);
  CHECK(none != two);
}

TEST_CASE("train.json --set minutes=M ends the run early with its checkpoint and says so") {
  TempDir dir;
  const std::string ckpt = (dir.path / "ckpt.safetensors").string();
  // 0.0001 minutes: the budget is gone after the first tick, so the second is the last of 50.
  auto r = run_cli("run pipelines/train.json --set steps=50 --set batch=2 --set minutes=0.0001 --set checkpoint=" + ckpt +
                   " --run-folder " + (dir.path / "run").string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("budget 0.0001 min") != std::string::npos);
  CHECK(r.err.find("the 0.0001 min budget (run.minutes) ended the run after tick 2 of 50") != std::string::npos);
  REQUIRE(std::filesystem::exists(ckpt));
  CHECK(noiseflow::runtime::read_safetensors(ckpt).metadata.at("step") == "2");
  // A recipe that cannot load names its param.
  auto bad = run_cli("check pipelines/train.json --set weighting=snr_squared");
  CHECK(bad.status == 1);
  CHECK(bad.err.find("weighting") != std::string::npos);
}

TEST_CASE("train.json --set steps=0 --set minutes=M sizes the run to its budget, the recorded count reruns and resumes it") {
  TempDir dir;
  const std::string a = (dir.path / "a.safetensors").string(), b = (dir.path / "b.safetensors").string();
  const std::string common = " --set batch=2 --set checkpoint_every=100000 --set preview_every=5 --set preview_n=2";
  // 0.15 minutes: a probe of 12 ticks (the preview timed once), then as many ticks as the rest allows.
  auto r = run_cli("run pipelines/train.json --set steps=0 --set minutes=0.15" + common + " --set checkpoint=" + a +
                   " --run-folder " + (dir.path / "a").string());
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("budget allows") != std::string::npos);
  const auto ca = noiseflow::runtime::read_safetensors(a);
  const auto sized = nlohmann::json::parse(ca.metadata.at("sized"));
  const int64_t n = sized.at("ticks");
  CHECK(n >= 1);
  CHECK(sized.at("param") == "steps");
  CHECK(sized.at("tick_seconds").get<double>() > 0.0);
  CHECK(sized.at("sink_seconds").contains("preview"));  // the periodic preview was timed in the probe
  CHECK(ca.metadata.at("step") == std::to_string(n));
  const auto resolved = nlohmann::json::parse(noiseflow::test::read_bytes((dir.path / "a/pipeline.json").string()));
  CHECK(resolved["params"]["steps"] == n);
  CHECK(resolved["run"]["ticks"] == n);
  CHECK(resolved["run"]["sized"]["ticks"] == n);
  // log.csv records the count on every row (its last column, ticks).
  std::ifstream log((dir.path / "a/log.csv").string());
  std::string line;
  int64_t rows = -1;
  while (std::getline(log, line)) {
    if (++rows == 0) CHECK(line == "tick,loss,lr,grad_norm,seconds,fd,ticks");
    else CHECK(line.substr(line.rfind(',') + 1) == std::to_string(n));
  }
  CHECK(rows == n);
  // The same count given as a number is the same run, bitwise.
  auto again = run_cli("run pipelines/train.json -q --set steps=" + std::to_string(n) + common + " --set checkpoint=" +
                       b + " --run-folder " + (dir.path / "b").string());
  REQUIRE(again.status == 0);
  const auto cb = noiseflow::runtime::read_safetensors(b);
  REQUIRE(cb.tensors.size() == ca.tensors.size());
  for (const auto& [name, t] : ca.tensors) {
    INFO(name);
    REQUIRE(cb.tensors.count(name) == 1);
    CHECK(noiseflow::test::same_bytes(t, cb.tensors.at(name)));
  }
  CHECK(cb.metadata.count("sized") == 0);
  // --resume of the sized run takes the count its checkpoint records (no new probe).
  auto resumed = run_cli("run pipelines/train.json --resume --set steps=0 --set minutes=0.15" + common +
                         " --set checkpoint=" + a + " --run-folder " + (dir.path / "a").string());
  INFO(resumed.err);
  CHECK(resumed.status == 0);
  CHECK(resumed.err.find("resuming a run sized by its budget: " + std::to_string(n) + " ticks") != std::string::npos);
  // No count and no budget: an error naming the param and both ways out.
  auto none = run_cli("check pipelines/train.json --set steps=0 --set minutes=0");
  CHECK(none.status == 1);
  CHECK(none.err.find("params.steps") != std::string::npos);
  CHECK(none.err.find("--set minutes=M") != std::string::npos);
  // With a budget, check accepts it and says the run is sized.
  auto ok = run_cli("check pipelines/train.json --set steps=0 --set minutes=30");
  CHECK(ok.status == 0);
  // The default is that: a 30-minute budget.
  auto dflt = run_cli("check pipelines/train.json");
  CHECK(dflt.status == 0);
  CHECK((dflt.out + dflt.err).find("ticks sized to the 30 min budget (run.fit: steps)") != std::string::npos);
}

TEST_CASE("train.json with fd=true logs the sample quality in log.csv's fd column every fd_every ticks") {
  TempDir dir;
  const std::string cls = (dir.path / "cls.safetensors").string(), folder = (dir.path / "run").string();
  REQUIRE(run_cli("run pipelines/eval/train_classifier.json --ticks 2 -q --set batch=8 --set checkpoint=" + cls +
                  " --run-folder " + folder + "_cls").status == 0);
  auto r = run_cli("run pipelines/train.json --ticks 4 -q --set batch=2 --set fd=true --set fd_every=2 --set fd_n=4"
                   " --set fd_classifier=" + cls + " --set checkpoint=" + (dir.path / "c.safetensors").string() +
                   " --run-folder " + folder);
  INFO(r.err);
  REQUIRE(r.status == 0);
  std::ifstream in(folder + "/log.csv");
  std::string header, line;
  std::getline(in, header);
  CHECK(header == "tick,loss,lr,grad_norm,seconds,fd,ticks");
  std::vector<std::string> fds;
  while (std::getline(in, line)) {
    const size_t last = line.rfind(','), fd = line.rfind(',', last - 1);
    CHECK(line.substr(last + 1) == "4");  // the run's tick count
    fds.push_back(line.substr(fd + 1, last - fd - 1));
  }
  REQUIRE(fds.size() == 4);
  CHECK(fds[0].empty());
  CHECK(fds[2].empty());
  CHECK(std::stod(fds[1]) > 0.0);  // ticks 1 and 3: a distance, finite and positive
  CHECK(std::stod(fds[3]) > 0.0);
  // Without the classifier the run stops before training, naming the node and how to make it.
  auto missing = run_cli("run pipelines/train.json --ticks 2 -q --set fd=true --set fd_classifier=" +
                         (dir.path / "none.safetensors").string() + " --set checkpoint=" +
                         (dir.path / "c2.safetensors").string() + " --run-folder " + folder + "_2");
  CHECK_FALSE(std::filesystem::exists(dir.path / "c2.safetensors"));
  CHECK(missing.status == 1);
  CHECK(missing.err.find("node \"fd\"") != std::string::npos);
  CHECK(missing.err.find("train the classifier first") != std::string::npos);
}

TEST_CASE("train.json draws loss.png from the whole log.csv at each checkpoint and writes a sample grid every preview_every ticks") {
  TempDir dir;
  const std::string folder = (dir.path / "run").string();
  const std::string args = "run pipelines/train.json -q --set batch=2 --set preview_every=2 --set preview_n=4"
                           " --set checkpoint_every=2 --set checkpoint=" + (dir.path / "c.safetensors").string() +
                           " --run-folder " + folder;
  auto r = run_cli(args + " --ticks 4");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.find("wrote loss curve: " + folder + "/loss.png\n") != std::string::npos);
  for (const char* step : {"000002", "000004"}) {
    // 2 x 2 digits of 28 x 28, 1 pixel apart, twice the size: (2 x 29 + 1) x 2 = 118, widened to the
    // title's 150; a title line of 24 pixels above.
    int w = 0, h = 0, c = 0;
    REQUIRE(stbi_info((folder + "/samples/step_" + step + ".png").c_str(), &w, &h, &c) == 1);
    CHECK(w == 150);
    CHECK(h == 24 + 118);
    CHECK(c == 1);
  }
  CHECK_FALSE(fs::exists(folder + "/samples/step_000001.png"));
  // A resumed run's curve has every row, those before the resume too: loss.png is log.csv drawn whole.
  auto resumed = run_cli(args + " --ticks 6 --resume");
  INFO(resumed.err);
  REQUIRE(resumed.status == 0);
  std::vector<double> steps, loss;
  noiseflow::nodes::draw::read_loss_log(folder + "/log.csv", steps, loss);
  CHECK(steps == std::vector<double>{1, 2, 3, 4, 5, 6});
  REQUIRE(noiseflow::nodes::draw::write_loss_plot(folder + "/log.csv", (dir.path / "again.png").string(),
                                                "mnist: training loss") == 6);
  CHECK(noiseflow::test::read_bytes(folder + "/loss.png") == noiseflow::test::read_bytes((dir.path / "again.png").string()));
  int w = 0, h = 0, c = 0;
  REQUIRE(stbi_info((folder + "/loss.png").c_str(), &w, &h, &c) == 1);
  CHECK(w == 900);
  CHECK(h == 560);
  CHECK(fs::exists(folder + "/samples/step_000006.png"));
}

TEST_CASE("noiseflow bench reports the plan: blocked tensors and shared gradients, none with --reference") {
  const std::string args = "bench pipelines/bench_unet.json --set batch=2 --repeats 1 --warmup 0 --threads 1";
  auto fast = run_cli(args);
  auto ref = run_cli(args + " --reference");
  REQUIRE(fast.status == 0);
  REQUIRE(ref.status == 0);
  auto plan_line = [](const std::string& out) {
    auto at = out.find("\nplan: ");
    return at == std::string::npos ? std::string() : out.substr(at + 1, out.find('\n', at + 1) - at - 1);
  };
  const std::string f = plan_line(fast.out), r = plan_line(ref.out);
  INFO("optimised: " << f << "\nreference: " << r);
  CHECK(f.find("plan: 0 of") == std::string::npos);
  // One: the middle ResBlock's output (a convolution's) is read by the attention, which takes plain tensors.
  CHECK(f.find(", 1 layout conversions per tick") != std::string::npos);
  CHECK(r.find(", 0 layout conversions per tick") != std::string::npos);
  CHECK(r.find("plan: 0 of") != std::string::npos);
  // The reference path gives every gradient its own buffer: "gradients X MB (N tensors, X MB unshared)".
  auto mb = [](const std::string& line, const char* key) { return std::stod(line.substr(line.find(key) + std::strlen(key))); };
  CHECK(mb(r, "gradients ") == doctest::Approx(mb(r, "tensors, ")));
  CHECK(mb(f, "gradients ") < mb(f, "tensors, ") / 2);
}

TEST_CASE("noiseflow plan prints the tasks, tensors and memory report of a pipeline without running it") {
  auto r = run_cli("plan pipelines/train.json");
  CHECK(r.status == 0);
  CHECK(r.out.find("plan of pipelines/train.json: training, optimised path") == 0);
  CHECK(r.out.find("forward  net.stem\n") != std::string::npos);
  CHECK(r.out.find("backward net.stem\n") != std::string::npos);
  CHECK(r.out.find("net.stem.y                           [64, 32, 28, 28]   nChw16c  own") != std::string::npos);
  CHECK(r.out.find("  peak ") != std::string::npos);
  auto j = run_cli("plan pipelines/train.json --json");
  REQUIRE(j.status == 0);
  const auto plan = nlohmann::json::parse(j.out);
  CHECK(plan["training"] == true);
  CHECK(plan["memory"]["peak"].get<int64_t>() > 500'000'000);
  CHECK(plan["memory"]["optimizer_state"].get<int64_t>() == 3 * plan["memory"]["parameters"].get<int64_t>());
  // Half the batch: the activations halve (but for the schedule tables and scalars).
  auto half = nlohmann::json::parse(run_cli("plan pipelines/train.json --json --set batch=32").out);
  const double full_act = double(plan["stats"]["activation_bytes"].get<int64_t>());
  CHECK(std::abs(2.0 * double(half["stats"]["activation_bytes"].get<int64_t>()) - full_act) < 1e-3 * full_act);
  auto s = run_cli("plan pipelines/sample.json");
  CHECK(s.status == 0);
  CHECK(s.out.find("plan of pipelines/sample.json: no optimizer, optimised path") == 0);
  CHECK(s.out.find("forward chained") != std::string::npos);

  TempDir dir;
  const std::string bad = dir.write("two.json", R"({ "noiseflow": 1, "nodes": {
      "x": { "op": "random.normal", "attrs": { "shape": [2, 4] } },
      "f": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 4 } },
      "loss": { "op": "loss.mse", "inputs": { "pred": "f", "target": "x" } },
      "opt": { "op": "optim.sgd", "inputs": { "loss": "loss" } },
      "opt2": { "op": "optim.sgd", "inputs": { "loss": "loss" } } } })");
  auto e = run_cli("plan '" + bad + "'");
  CHECK(e.status == 1);
  CHECK(e.out.empty());
  CHECK(e.err.find(bad + R"(: node "opt2", op: only one optimizer per pipeline is supported (found "opt" too))") !=
        std::string::npos);
}

TEST_CASE("noiseflow export onnx writes a net and names an unsupported node") {
  TempDir dir;
  auto checkpoint = [&](const std::string& name, const std::vector<std::pair<std::string, noiseflow::runtime::Shape>>& ps) {
    noiseflow::runtime::NamedTensorList list;
    for (auto& [n, s] : ps) {
      noiseflow::runtime::Tensor t(s);
      t.fill(0.1f);
      list.push_back({"net." + n, t});
    }
    noiseflow::runtime::write_safetensors(dir / name, list, {{"step", "3"}});
    return dir / name;
  };

  // The MLP denoiser: dim 2, hidden 128, time embedding 32.
  const std::string mlp = checkpoint("mlp.safetensors", {{"tproj.weight", {128, 32}}, {"tproj.bias", {128}},
                                                         {"in.weight", {128, 2}}, {"in.bias", {128}},
                                                         {"fc1.weight", {128, 128}}, {"fc1.bias", {128}},
                                                         {"fc2.weight", {128, 128}}, {"fc2.bias", {128}},
                                                         {"out.weight", {2, 128}}, {"out.bias", {2}}});
  auto r = run_cli("export onnx " + mlp + " -o " + (dir / "mlp.onnx") + " --net pipelines/nets/mlp_denoiser.json --weights raw");
  INFO("stderr: ", r.err);
  CHECK(r.status == 0);
  CHECK(r.out == "wrote onnx: " + (dir / "mlp.onnx") +
                     " (opset 17, 17 nodes, 12 initializers, 37,890 parameters): x [N, 2], t [N] -> eps [N, 2] (float32)\n");
  CHECK(fs::file_size(dir / "mlp.onnx") > 37890 * 4);

  // EMA copies asked of a file without them: the tensor, a hint, non-zero exit.
  auto r2 = run_cli("export onnx " + mlp + " -o " + (dir / "mlp2.onnx") + " --net pipelines/nets/mlp_denoiser.json");
  CHECK(r2.status == 1);
  CHECK(r2.err.find(mlp + ": tensor \"ema.net.") != std::string::npos);
  CHECK(r2.err.find("the file has raw weights but no copies named ema.*: export the raw weights (and 9 more)") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir / "mlp2.onnx"));

  // A net with a node type that has no ONNX mapping.
  const std::string net = dir.write("odd.json", R"({
    "noiseflow": 1, "name": "odd_net",
    "inputs": { "x": { "shape": [2, 4] } },
    "outputs": { "out": "odd" },
    "nodes": {
      "lin": { "op": "nn.linear", "inputs": { "x": "x" }, "attrs": { "out_features": 3 } },
      "odd": { "op": "tensor.scale", "inputs": { "x": "lin" }, "attrs": { "a": 2 } }
    }
  })");
  const std::string ck = checkpoint("odd.safetensors", {{"lin.weight", {3, 4}}, {"lin.bias", {3}}});
  auto r3 = run_cli("export onnx " + ck + " -o " + (dir / "odd.onnx") + " --net " + net + " --weights raw");
  CHECK(r3.status == 1);
  CHECK(r3.out.empty());
  // The mapped node types are the registry's (this process links the same node library as the CLI); the nn.*
  // ones are required among them in tests/runtime/export/test_onnx.cpp.
  std::string mapped;
  for (auto& op : noiseflow::runtime::onnx::mapped_ops()) mapped += (mapped.empty() ? "" : ", ") + op;
  CHECK(mapped.find("nn.linear") != std::string::npos);
  CHECK(r3.err == net + ": node \"odd\", op: node type tensor.scale has no ONNX mapping (mapped: " + mapped + ")\n");
  CHECK_FALSE(fs::exists(dir / "odd.onnx"));
  CHECK_FALSE(fs::exists(dir / "odd.onnx.tmp"));
}
