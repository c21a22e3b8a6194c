// tools/noiseflow.cpp — the `noiseflow` command: run, check, dot, plan, bench, nodes, net unet, export onnx, serve.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <algorithm>
#include <array>
#include <map>
#include <optional>

#include <omp.h>

#include <CLI/CLI.hpp>

#include "noiseflow/noiseflow.hpp"
#include "runtime/atomic_write.hpp"
#include "tools/net/unet.hpp"
#include "tools/nodes_markdown.hpp"
#include "tools/run_observer.hpp"
#include "tools/studio/studio.hpp"

namespace graph = noiseflow::graph;

namespace {

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v), out;
  int k = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (k && k % 3 == 0 && *it != '-') out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
    ++k;
  }
  return out;
}

noiseflow::Options make_options(const std::vector<std::string>& sets, int64_t seed, int threads, int64_t ticks) {
  noiseflow::Options o;
  for (auto& s : sets) {
    auto [k, v] = noiseflow::graph::parse_set(s);
    o.params[k] = v;
  }
  if (seed >= 0) o.seed = uint64_t(seed);
  if (ticks > 0) o.ticks = ticks;
  o.threads = threads;
  return o;
}

std::string fmt_time(double s) {
  char b[32];
  if (s < 60) std::snprintf(b, sizeof b, "%.0fs", s);
  else if (s < 3600) std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(b, sizeof b, "%dh%02dm", int(s) / 3600, int(s) / 60 % 60);
  return b;
}

std::string fmt_minutes(double m) {
  char b[32];
  std::snprintf(b, sizeof b, "%g min", m);
  return b;
}

noiseflow::Pipeline* g_running = nullptr;
char g_rank_note[160] = "";  // data parallelism: what SIGTERM means (written from the handler)
void on_signal(int sig) {
  if (sig == SIGTERM && g_rank_note[0]) (void)!::write(2, g_rank_note, std::strlen(g_rank_note));
  if (g_running) g_running->cancel();
}

int cmd_run(const std::string& file, const noiseflow::Options& o, bool quiet, int64_t log_every,
            const std::string& run_folder) {
  noiseflow::Pipeline p(file, o);
  const auto& g = p.graph();
  // Data parallelism: rank 0 writes the run folder and prints progress; the others only compute.
  const int rank = o.comm ? o.comm->rank() : 0, ranks = o.comm ? o.comm->size() : 1;
  if (rank != 0) quiet = true;
  // Plans (and resumes) on every rank; rank 0 keeps the run folder.
  noiseflow::tools::RunObserver observer(p, run_folder, rank == 0);
  bool tty = isatty(fileno(stderr));
  double smooth = NAN;
  const std::string on_ranks = ranks > 1 ? ", " + std::to_string(ranks) + " ranks" : std::string();
  if (!quiet && !g.sized.is_null()) {
    const auto& z = g.sized;
    if (!o.resume)
      std::fprintf(stderr, "noiseflow: the %s budget allows %lld ticks here (%s = %lld; a tick %.3f s, sinks timed in a "
                   "%lld-tick probe); rerun it with --set %s=%lld\n",
                   fmt_minutes(g.minutes).c_str(), (long long)z["ticks"].get<int64_t>(),
                   z["param"].get<std::string>().c_str(), (long long)z["ticks"].get<int64_t>(),
                   z["tick_seconds"].get<double>(), (long long)z["probe_ticks"].get<int64_t>(),
                   z["param"].get<std::string>().c_str(), (long long)z["ticks"].get<int64_t>());
    else
      std::cerr << "noiseflow: resuming a run sized by its budget: " << z["ticks"].get<int64_t>() << " ticks, as its "
                << "checkpoint records\n";
  }
  if (!quiet)
    std::cerr << "noiseflow: running " << file << " (" << g.nodes.size() << " nodes, " << g.ticks << " ticks, seed "
              << g.seed << on_ranks << (g.minutes > 0 ? ", budget " + fmt_minutes(g.minutes) : std::string()) << ")\n";
  g_running = &p;
  if (ranks > 1)
    std::snprintf(g_rank_note, sizeof g_rank_note,
                  "\nnoiseflow: rank %d of %d: terminated (mpirun ends every rank when one fails); the last checkpoint "
                  "is intact: --resume continues from it\n",
                  rank, ranks);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  int64_t every = log_every > 0 ? log_every : std::max<int64_t>(1, g.ticks / 20);
  if (!quiet && p.executor().next_tick() > 0)
    std::cerr << "noiseflow: resuming at tick " << p.executor().next_tick() << "\n";
  const int64_t first_tick = observer.first_tick();
  const auto started = std::chrono::steady_clock::now();
  p.run([&](const noiseflow::TickInfo& t) {
    const noiseflow::tools::Progress pr = observer.tick(t);
    if (quiet) return;
    if (pr.has_loss) smooth = std::isnan(smooth) ? pr.loss : 0.98 * smooth + 0.02 * pr.loss;
    char line[256];
    std::snprintf(line, sizeof line, "tick %lld/%lld%s%s  %.2f ticks/s  elapsed %s  eta %s", (long long)pr.value,
                  (long long)pr.max, ranks > 1 ? ("  " + std::to_string(ranks) + " ranks").c_str() : "",
                  pr.has_loss ? ("  loss " + std::to_string(smooth)).c_str() : "", pr.rate, fmt_time(pr.seconds).c_str(),
                  fmt_time(pr.eta).c_str());
    if (tty) std::cerr << "\r\033[K" << line << std::flush;
    else if ((t.tick + 1) % every == 0 || t.tick + 1 == t.ticks) std::cerr << line << "\n";
  });
  g_running = nullptr;
  if (tty && !quiet) std::cerr << "\n";
  if (rank != 0) return 0;
  observer.finish();
  noiseflow::tools::RunFolder* folder = observer.folder();
  if (auto stop = p.executor().budget_stop())
    std::cerr << "noiseflow: the " << fmt_minutes(g.minutes) << " budget (run.minutes) ended the run after tick "
              << stop->first << " of " << stop->second << "; its at_end nodes ran (--resume continues)\n";
  if (ranks > 1 && !quiet && !p.plan().allreduce.active())
    std::fprintf(stderr, "noiseflow: %d ranks (%s), batch split %d ways, each rank's samples gathered on rank 0\n",
                 ranks, o.comm->describe().c_str(), ranks);
  if (ranks > 1 && !quiet && p.plan().allreduce.active()) {
    const auto [ar_s, ar_n] = p.executor().allreduce_time();
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double ticks_run = double(std::max<int64_t>(1, p.executor().next_tick() - first_tick));
    std::fprintf(stderr,
                 "noiseflow: %d ranks (%s), global batch split %d ways: gradient allreduce of %.1f MB per tick, "
                 "%.2f ms per tick on rank 0 (%.1f%% of %.1f ms per tick; waiting for the slowest rank included)\n",
                 ranks, o.comm->describe().c_str(), ranks, double(p.plan().allreduce.floats) * 4 / 1e6,
                 ar_n ? ar_s / double(ar_n) * 1e3 : 0.0, total > 0 ? 100.0 * ar_s / total : 0.0,
                 total / ticks_run * 1e3);
  }
  for (auto& [kind, path] : p.artifacts()) std::cout << "wrote " << kind << ": " << path << "\n";
  if (folder->plotted()) std::cout << "wrote loss curve: " << folder->dir() << "/loss.png\n";
  std::cout << "run folder: " << folder->dir() << "\n";
  return 0;
}

int cmd_check(const std::string& file, const noiseflow::Options& o) {
  noiseflow::Pipeline p(file, o);
  const auto& g = p.graph();
  size_t edges = 0;
  for (int i : g.order) {
    const auto& n = g.nodes[i];
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (!n.inputs[k]) continue;
      ++edges;
      std::cout << "  " << g.ref_name(*n.inputs[k]) << " -> " << n.id << "." << n.schema->inputs()[k].name << "  "
                << noiseflow::graph::shape_str(g.shape(*n.inputs[k])) << "\n";
    }
  }
  std::cout << file << ": ok: " << g.nodes.size() << " nodes, " << edges << " edges, "
            << (g.fit_pending ? "ticks sized to the " + fmt_minutes(g.minutes) + " budget (run.fit: " + g.fit + ")"
                              : std::to_string(g.ticks) + " ticks")
            << "\n";
  std::cout << "trainable parameters: " << with_commas(g.param_count()) << "\n";
  return 0;
}

// Prints the execution plan: tasks, tensors, gradients, conversions, slots and the memory report.
int cmd_plan(const std::string& file, const noiseflow::Options& o, bool json) {
  noiseflow::Pipeline p(file, o);
  const auto& plan = p.plan();
  if (json) std::cout << noiseflow::runtime::plan::plan_json(p.graph(), plan).dump(2) << "\n";
  else std::cout << noiseflow::runtime::plan::plan_text(p.graph(), plan);
  return 0;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times every node's forward and backward over `repeats` ticks after `warmup`.
int cmd_bench(const std::string& file, const noiseflow::Options& o, int repeats, int warmup) {
  noiseflow::runtime::ExecutorOptions eo;
  eo.threads = o.threads;
  eo.profile = true;
  eo.reference = o.reference;
  eo.flow_threads = o.flow_threads;
  graph::LoadOptions lo;
  lo.schemas = &noiseflow::runtime::Registry::global();
  lo.overrides = o.params;
  lo.seed = o.seed;
  lo.ticks = int64_t(warmup + repeats);
  auto g = graph::load_pipeline(file, lo);
  noiseflow::runtime::Executor ex(g, eo);
  for (int i = 0; i < warmup; ++i) ex.step();
  size_t n = g.nodes.size();
  std::vector<std::vector<double>> fw(n), bw(n);
  std::vector<double> total;
  for (int r = 0; r < repeats; ++r) {
    ex.reset_profile();
    auto t0 = std::chrono::steady_clock::now();
    ex.step();
    total.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    auto prof = ex.profile();
    for (size_t i = 0; i < n; ++i) fw[i].push_back(prof[i].forward_s), bw[i].push_back(prof[i].backward_s);
  }
  // FLOPs of the convolutions (forward; backward = data + weights = 2x).
  double conv_flops = 0, conv_s = 0, sum_f = 0, sum_b = 0;
  std::map<std::string, std::array<double, 2>> by_op;
  std::printf("%-28s %-22s %10s %10s\n", "node", "op", "fwd ms", "bwd ms");
  for (int i : g.order) {
    const auto& gn = g.nodes[i];
    double f = median(fw[i]), b = median(bw[i]);
    sum_f += f, sum_b += b;
    by_op[gn.op][0] += f, by_op[gn.op][1] += b;
    std::printf("%-28s %-22s %10.3f %10.3f\n", gn.id.c_str(), gn.op.c_str(), f * 1e3, b * 1e3);
    if (gn.op == "nn.conv2d") {
      const auto& in = g.shape(*gn.inputs[0]);
      const auto& out = gn.output_shapes[0];
      double k = double(gn.attrs["kernel"].get<int64_t>());
      double flops = 2.0 * out[0] * out[1] * out[2] * out[3] * in[1] * k * k;
      conv_flops += flops * (b > 0 ? 3 : 1);
      conv_s += f + b;
    }
  }
  std::printf("\nby op (median ms per tick):\n");
  for (auto& [op, t] : by_op) std::printf("  %-22s fwd %9.3f  bwd %9.3f\n", op.c_str(), t[0] * 1e3, t[1] * 1e3);
  std::sort(total.begin(), total.end());
  std::printf("\n%s: %d repeats after %d warm-up, threads %d\n", file.c_str(), repeats, warmup,
              o.threads ? o.threads : omp_get_num_procs());
  std::printf("tick wall time: median %.2f ms (min %.2f, max %.2f); sum of node medians: forward %.2f ms, backward %.2f ms\n",
              median(total) * 1e3, total.front() * 1e3, total.back() * 1e3, sum_f * 1e3, sum_b * 1e3);
  if (conv_s > 0)
    std::printf("convolutions: %.2f GFLOP per tick (direct-convolution count) in %.2f ms = %.1f GFLOP/s effective\n",
                conv_flops / 1e9, conv_s * 1e3, conv_flops / conv_s / 1e9);
  const auto& st = ex.plan_stats();
  std::printf("plan: %lld of %lld tensors nChw16c, %lld layout conversions per tick; activations %.1f MB, gradients "
              "%.1f MB (%lld tensors, %.1f MB unshared)\n",
              (long long)st.blocked_tensors, (long long)st.tensors, (long long)st.conversions, st.activation_bytes / 1e6,
              st.gradient_bytes / 1e6, (long long)st.gradient_tensors, st.gradient_bytes_unshared / 1e6);
  return 0;
}

int cmd_nodes(bool json, bool markdown) {
  auto& reg = noiseflow::runtime::Registry::global();
  if (markdown) {
    std::cout << noiseflow::tools::nodes_markdown(reg);
    return 0;
  }
  if (json) {
    nlohmann::json all = nlohmann::json::array();
    for (auto& op : reg.ops()) all.push_back(reg.find(op)->schema.to_json());
    std::cout << all.dump(2) << "\n";
    return 0;
  }
  for (auto& op : reg.ops()) {
    const auto& s = reg.find(op)->schema;
    std::cout << op << " — " << s.doc() << "\n";
    for (auto& in : s.inputs())
      std::cout << "    in  " << in.name << (in.optional ? " (optional)" : "") << (in.differentiable ? " [grad]" : "")
                << (in.doc.empty() ? "" : ": " + in.doc) << "\n";
    for (auto& out : s.outputs()) std::cout << "    out " << out.name << (out.doc.empty() ? "" : ": " + out.doc) << "\n";
    for (auto& a : s.attrs()) {
      std::cout << "    attr " << a.name << " (" << noiseflow::graph::attr_type_name(a.type);
      if (a.required()) std::cout << ", required";
      else std::cout << ", default " << a.default_value.dump();
      if (a.min) std::cout << ", min " << *a.min;
      if (a.max) std::cout << ", max " << *a.max;
      if (!a.choices.empty()) {
        std::cout << ", one of";
        for (auto& c : a.choices) std::cout << " " << c;
      }
      std::cout << ")" << (a.doc.empty() ? "" : ": " + a.doc) << "\n";
    }
  }
  std::cout << reg.size() << " node types\n";
  return 0;
}

// Writes the net of a pipeline or net file with a checkpoint's weights as an ONNX model.
int cmd_export_onnx(const noiseflow::runtime::onnx::ExportRequest& r) {
  const auto s = noiseflow::runtime::onnx::export_onnx(r);
  std::cout << "wrote onnx: " << s.output << " (opset " << noiseflow::runtime::onnx::kOpsetVersion << ", "
            << s.onnx_nodes << " nodes, " << s.initializers << " initializers, " << with_commas(s.parameters)
            << " parameters): " << s.signature << "\n";
  return 0;
}

// Writes a generated UNet net file (tools/net/unet.hpp) to stdout, or to `output` atomically after checking
// that the ResBlock file it includes is there; the written file is then loaded and shape-checked.
int cmd_net_unet(const noiseflow::tools::UnetSpec& spec, const std::string& output) {
  const auto problems = noiseflow::tools::unet_problems(spec);
  for (auto& p : problems) std::cerr << "noiseflow net unet: " << p << "\n";
  if (!problems.empty()) return 2;
  const std::string text = noiseflow::tools::unet_net_file(spec);
  if (output.empty()) {
    std::cout << text;
    return 0;
  }
  namespace fs = std::filesystem;
  const fs::path res_block = (fs::path(output).parent_path() / spec.res_block).lexically_normal();
  if (!fs::is_regular_file(res_block)) {
    std::cerr << "noiseflow net unet: " << output << " would include " << spec.res_block << ", but there is no "
              << res_block.string() << ": copy pipelines/nets/res_block.json there, or give --res-block with its "
              << "path relative to the net file (e.g. --res-block ../pipelines/nets/res_block.json)\n";
    return 1;
  }
  noiseflow::runtime::write_file_atomically(output, {text}, [&](const std::string& m) {
    throw std::runtime_error("noiseflow net unet: " + output + ": " + m);
  });
  try {
    noiseflow::Pipeline p(output, {});
    std::cout << "wrote " << output << ": " << with_commas(p.graph().param_count()) << " parameters, "
              << p.graph().nodes.size() << " nodes (" << noiseflow::tools::unet_command(spec) << ")\n";
  } catch (...) {
    fs::remove(output);
    throw;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"noiseflow — node-based diffusion models on CPUs"};
  app.require_subcommand(1);
  std::vector<std::string> plugins;
  app.add_option("--plugin", plugins, "load node types from a shared library (repeatable)");

  std::string file, run_folder;
  std::vector<std::string> sets;
  int64_t seed = -1, ticks = 0, log_every = 0;
  int threads = 0, flow_threads = 0;
  bool quiet = false, json = false, reference = false;
  const char* reference_help =
      "straightforward path: direct convolutions, one buffer per gradient (to check the optimised path)";

  auto* run = app.add_subcommand("run", "validate, plan and run a pipeline");
  run->add_option("file", file, "pipeline file")->required();
  run->add_option("--set", sets, "override a param: key=value (repeatable)");
  run->add_option("--seed", seed, "random seed (overrides run.seed)");
  run->add_option("--threads", threads, "compute threads (default: all cores)");
  run->add_option("--flow-threads", flow_threads, "threads running nodes beside the compute lane (default: 1)");
  run->add_option("--ticks", ticks, "number of ticks (overrides run.ticks)");
  run->add_option("--run-folder", run_folder, "where the resolved pipeline and log.csv go (default: runs/NAME)");
  run->add_option("--log-every", log_every, "when not on a terminal, print progress every N ticks");
  run->add_flag("-q,--quiet", quiet, "no progress output");
  run->add_flag("--reference", reference, reference_help);
  bool resume = false;
  run->add_flag("--resume", resume, "continue from the checkpoint the pipeline writes (same seed: same result)");

  auto* check = app.add_subcommand("check", "validate a pipeline and print every edge's shape");
  check->add_option("file", file, "pipeline file")->required();
  check->add_option("--set", sets, "override a param: key=value (repeatable)");

  auto* dot = app.add_subcommand("dot", "print the pipeline graph in Graphviz format");
  dot->add_option("file", file, "pipeline file")->required();
  dot->add_option("--set", sets, "override a param: key=value (repeatable)");

  auto* plan = app.add_subcommand("plan", "print the execution plan and its memory report (nothing runs)");
  plan->add_option("file", file, "pipeline file")->required();
  plan->add_option("--set", sets, "override a param: key=value (repeatable)");
  plan->add_flag("--json", json, "print the plan as JSON");
  plan->add_flag("--reference", reference, reference_help);

  int repeats = 10, warmup = 2;
  auto* bench = app.add_subcommand("bench", "time every node's forward and backward (median of repeats)");
  bench->add_option("file", file, "pipeline file (e.g. pipelines/bench_unet.json)")->required();
  bench->add_option("--set", sets, "override a param: key=value (repeatable)");
  bench->add_option("--threads", threads, "compute threads (default: all cores)");
  bench->add_option("--flow-threads", flow_threads, "threads running nodes beside the compute lane (default: 1)");
  bench->add_option("--repeats", repeats, "timed ticks")->check(CLI::PositiveNumber);
  bench->add_option("--warmup", warmup, "untimed ticks first")->check(CLI::NonNegativeNumber);
  bench->add_flag("--reference", reference, reference_help);

  auto* nodes = app.add_subcommand("nodes", "list every node type with its schema");
  nodes->add_flag("--json", json, "print the schemas as JSON");
  bool markdown = false;
  nodes->add_flag("--markdown", markdown, "print the node reference as Markdown (docs/nodes.md)")->excludes("--json");

  noiseflow::tools::UnetSpec unet_spec;
  std::vector<int64_t> unet_attn;
  std::string net_output;
  bool no_mid_attn = false;
  auto* net = app.add_subcommand("net", "write a net file (a subgraph to include in pipelines)");
  net->require_subcommand(1);
  auto* unet = net->add_subcommand(
      "unet", "a DDPM UNet of any size (improved-diffusion's layout; the defaults are unet-small, "
              "pipelines/nets/unet_small.json); docs/authoring.md");
  unet->add_option("-o,--output", net_output, "the net file to write (default: standard output)");
  unet->add_option("--name", unet_spec.name, "the net's name")->capture_default_str();
  unet->add_option("--in-channels", unet_spec.in_channels, "image channels in (1 grey, 3 RGB)")->capture_default_str();
  unet->add_option("--out-channels", unet_spec.out_channels, "channels out (default: as --in-channels)");
  unet->add_option("--size", unet_spec.size, "image height and width")->capture_default_str();
  unet->add_option("--ch", unet_spec.ch, "base channels")->capture_default_str();
  unet->add_option("--mult", unet_spec.mult, "channel multiplier per level, e.g. 1,2,2,2")
      ->delimiter(',')->capture_default_str();
  unet->add_option("--res-blocks", unet_spec.res_blocks, "ResBlocks per level going down (one more going up)")
      ->capture_default_str();
  unet->add_option("--attn", unet_attn, "resolutions with self-attention after every ResBlock, e.g. 16 or 16,8")
      ->delimiter(',');
  unet->add_flag("--no-mid-attn", no_mid_attn, "no self-attention between the middle ResBlocks");
  unet->add_option("--heads", unet_spec.heads, "attention heads")->capture_default_str();
  unet->add_option("--dropout", unet_spec.dropout, "dropout in every ResBlock while training")->capture_default_str();
  unet->add_option("--groups", unet_spec.groups, "GroupNorm groups")->capture_default_str();
  unet->add_option("--temb-mult", unet_spec.temb_mult, "time-embedding width, times --ch")->capture_default_str();
  unet->add_option("--classes", unet_spec.classes, "class-conditional with this many classes (0: unconditional)")
      ->capture_default_str();
  unet->add_option("--res-block", unet_spec.res_block, "the ResBlock subgraph's path, relative to the net file")
      ->capture_default_str();

  noiseflow::runtime::onnx::ExportRequest onnx_req;
  std::string weights_prefix;
  int64_t export_batch = 0;
  auto* exp = app.add_subcommand("export", "write a net with a checkpoint's weights in another format");
  exp->require_subcommand(1);
  auto* onnx = exp->add_subcommand(
      "onnx", "write the net as an ONNX model (opset 17): inputs x [N,C,H,W] and t [N] (float32 timesteps), output eps");
  onnx->add_option("checkpoint", onnx_req.checkpoint, "safetensors checkpoint with the net's weights")->required();
  onnx->add_option("-o,--output", onnx_req.output, "the .onnx file to write")->required();
  onnx->add_option("--net", onnx_req.net_file,
                   "net file, or a pipeline whose subgraph instance `net` is the net (default: "
                   "pipelines/nets/unet_small.json)");
  onnx->add_option("--instance", onnx_req.instance, "the net's instance id in a pipeline (default: net)");
  onnx->add_option("--batch", export_batch, "fixed batch size (default: dynamic, the symbolic dimension N)")
      ->check(CLI::PositiveNumber);
  onnx->add_option("--weights", onnx_req.weights,
                   "raw: the trained weights; ema: the EMA copies (ema.<name>); another name: the copies of the "
                   "optim.ema with that prefix (default: ema)");
  onnx->add_option("--prefix", weights_prefix,
                   "name prefix of the net's tensors in the checkpoint (default: the instance id and a dot, net.); "
                   "names without it are tried too");
  onnx->add_option("--set", sets, "override a param of the net or pipeline file: key=value (repeatable)");

  noiseflow::studio::ServeOptions serve_opts;
  auto* serve = app.add_subcommand("serve", "serve the studio page and its API (docs/API.md): edit and run pipelines in a browser");
  serve->add_option("--port", serve_opts.port, "TCP port (0: any free one)")->capture_default_str();
  serve->add_option("--host", serve_opts.host, "address to listen on (loopback unless told otherwise)")->capture_default_str();
  serve->add_option("--root", serve_opts.root, "the project folder (pipelines/, runs/, data/)")->capture_default_str();
  serve->add_option("--web", serve_opts.web, "the page's folder (default: ROOT/web, else the source tree's web/)");
  serve->add_option("--threads", serve_opts.threads, "compute threads of runs (default: all cores)");

  CLI11_PARSE(app, argc, argv);
  // Data parallelism: under mpirun, `run` trains on every rank (runtime/distributed.hpp).
  std::shared_ptr<noiseflow::runtime::Communicator> comm;
  const auto rank_prefix = [&] {
    return comm && comm->size() > 1
               ? "noiseflow: rank " + std::to_string(comm->rank()) + " of " + std::to_string(comm->size()) + ": "
               : std::string();
  };
  // A rank that fails alone ends the others (no rank waits for its gradients); errors every rank meets
  // alike (an invalid pipeline) are printed once, by rank 0, and every rank exits.
  const auto fail_run = [&](int code) {
    if (comm && comm->size() > 1) {
      std::cerr << rank_prefix() << "ending every rank of the run\n" << std::flush;
      comm->abort(code);
    }
    return code;
  };
  try {
    for (auto& p : plugins) noiseflow::load_plugin(p);
    auto opts = make_options(sets, seed, threads, ticks);
    opts.resume = resume;
    opts.reference = reference;
    opts.flow_threads = flow_threads;
    if (*run) {
      comm = noiseflow::runtime::world();
      if (comm->size() > 1) opts.comm = comm;
      return cmd_run(file, opts, quiet, log_every, run_folder);
    }
    if (*serve) return noiseflow::studio::serve(serve_opts);
    if (*check) return cmd_check(file, opts);
    if (*dot) {
      noiseflow::Pipeline p(file, opts);
      std::cout << p.graph().dot();
      return 0;
    }
    if (*nodes) return cmd_nodes(json, markdown);
    if (*unet) {
      unet_spec.attn.insert(unet_attn.begin(), unet_attn.end());
      unet_spec.mid_attn = !no_mid_attn;
      return cmd_net_unet(unet_spec, net_output);
    }
    if (*plan) return cmd_plan(file, opts, json);
    if (*bench) return cmd_bench(file, opts, repeats, warmup);
    if (*onnx) {
      onnx_req.params = opts.params;
      if (export_batch > 0) onnx_req.batch = export_batch;
      if (!onnx->get_option("--prefix")->empty()) onnx_req.prefix = weights_prefix;
      return cmd_export_onnx(onnx_req);
    }
  } catch (const noiseflow::GraphError& e) {
    if (comm && comm->rank() != 0) return 1;  // rank 0 reports it
    std::cerr << e.what() << "\n";
    std::cerr << "noiseflow: " << e.diagnostics.size() << " error" << (e.diagnostics.size() == 1 ? "" : "s") << "\n";
    return 1;
  } catch (const noiseflow::runtime::onnx::ExportError& e) {
    std::cerr << e.what() << "\n";
    return 1;
  } catch (const noiseflow::Cancelled&) {
    if (!comm || comm->rank() == 0) std::cerr << "\nnoiseflow: cancelled\n";
    return 130;
  } catch (const std::exception& e) {
    std::cerr << "\n" << rank_prefix() << e.what() << "\n";
    return fail_run(1);
  }
  return 0;
}
