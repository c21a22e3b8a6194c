// tools/studio/runs.cpp — the studio's worker thread: one run at a time from the queue, its progress,
// previews and outputs broadcast on the WebSocket and kept in its history entry (docs/API.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "nodes/draw/plot.hpp"
#include "nodes/draw/png_grid.hpp"
#include "runtime/errors.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"
#include "runtime/tensor.hpp"
#include "tools/run_observer.hpp"
#include "tools/studio/studio_impl.hpp"

namespace noiseflow::studio {

namespace {

// ---- images -------------------------------------------------------------------------------------------

// Up to 16 images of x0 [N, C, H, W] (C 1 or 3; others show their first channel) as a PNG grid, scaled so
// the grid is at least ~256 pixels wide.
std::string x0_png(const runtime::Tensor& x0) {
  const auto& s = x0.shape();
  if (s.size() != 4) return {};
  const int64_t n = std::min<int64_t>(s[0], 16), c = s[1], h = s[2], w = s[3];
  if (n <= 0 || h <= 0 || w <= 0 || h > 1024 || w > 1024) return {};
  const int ch = c == 3 ? 3 : 1;
  const int64_t cols = int64_t(std::ceil(std::sqrt(double(n)))), rows = (n + cols - 1) / cols, pad = 2;
  const int64_t scale = std::max<int64_t>(1, 256 / (cols * (w + pad)));
  const int W = int((cols * (w + pad) + pad) * scale), H = int((rows * (h + pad) + pad) * scale);
  nodes::draw::Canvas canvas(W, H, ch, {40, 40, 40});
  const float* d = x0.data();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t x_at = (pad + (k % cols) * (w + pad)) * scale, y_at = (pad + (k / cols) * (h + pad)) * scale;
    for (int64_t y = 0; y < h * scale; ++y)
      for (int64_t x = 0; x < w * scale; ++x) {
        const int64_t yy = y / scale, xx = x / scale;
        nodes::draw::Rgb px;
        auto at = [&](int64_t cc) { return nodes::draw::to_byte(d[((k * c + cc) * h + yy) * w + xx]); };
        if (ch == 3) px = {at(0), at(1), at(2)};
        else px = {at(0), at(0), at(0)};
        canvas.set(int(x_at + x), int(y_at + y), px);
      }
  }
  return canvas.png();
}

// A binary preview frame as ComfyUI sends it: event 1 (preview image), format 2 (PNG), the PNG.
std::string preview_frame(const std::string& png) {
  std::string f(8, '\0');
  f[3] = 1;
  f[7] = 2;
  return f + png;
}

}  // namespace

// ---- Studio: runs -------------------------------------------------------------------------------------

void Studio::broadcast(const Json& msg) {
  fan_out(std::make_shared<const std::string>(msg.dump(-1, ' ', false, Json::error_handler_t::replace)), false);
}

void Studio::broadcast_binary(std::string frame) {
  fan_out(std::make_shared<const std::string>(std::move(frame)), true);
}

// Hands a message to every WebSocket session, on the io thread.
void Studio::fan_out(std::shared_ptr<const std::string> msg, bool binary) {
  net::post(ioc_, [this, msg = std::move(msg), binary] {
    for (auto& [p, w] : sessions_)
      if (auto sp = w.lock()) sp->send(msg, binary);
  });
}

Json Studio::status_message() {
  std::lock_guard lock(m_);
  const size_t remaining = pending_.size() + (running_ ? 1 : 0);
  return {{"type", "status"}, {"data", {{"status", {{"exec_info", {{"queue_remaining", remaining}}}}}}}};
}

void Studio::send_status() { broadcast(status_message()); }

void Studio::join(const std::shared_ptr<WsSession>& s, const std::string& client_id) {
  sessions_[s.get()] = s;
  Json msg = status_message();
  msg["data"]["sid"] = client_id;
  s->send(std::make_shared<const std::string>(msg.dump()), false);
}

// Records a run message in its history (under the lock) and broadcasts it.
void Studio::message(RunEntry& e, const std::string& type, Json data) {
  data["prompt_id"] = e.id;
  {
    std::lock_guard lock(m_);
    if (type.rfind("execution_", 0) == 0) e.messages.push_back({type, data});
  }
  broadcast({{"type", type}, {"data", data}});
}

void Studio::work() {
  for (;;) {
    std::shared_ptr<RunEntry> e;
    {
      std::unique_lock lock(m_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (stopping_) return;
      e = pending_.front();
      pending_.pop_front();
      running_ = e;
      cancel_ = false;
      e->status = "running";
    }
    send_status();
    run(e);
    {
      std::lock_guard lock(m_);
      running_.reset();
      // Keep the last kHistoryLimit finished runs.
      size_t finished = 0;
      for (auto it = history_.rbegin(); it != history_.rend(); ++it)
        if ((*it)->status != "pending" && (*it)->status != "running" && ++finished > kHistoryLimit) {
          history_.erase(std::next(it).base());
          break;
        }
    }
    send_status();
  }
}

void Studio::run(const std::shared_ptr<RunEntry>& ep) {
  RunEntry& e = *ep;
  // ComfyUI's order: execution_start, execution_cached (nothing is cached here), executing per node, the
  // progress of the ticks, executed per output node, execution_success (or _error, _interrupted), and
  // executing with node null.
  message(e, "execution_start", {{"timestamp", now_ms()}});
  message(e, "execution_cached", {{"nodes", Json::array()}, {"timestamp", now_ms()}});
  std::string status = "success";
  Json error = nullptr;
  int64_t last_tick = 0;
  try {
    // Through the embedding API, as a program embedding noiseflow runs a pipeline; the run folder and the
    // progress as `noiseflow run` keeps them (tools/run_observer.hpp).
    Options po;
    po.threads = opt_.threads;
    for (auto& [k, v] : e.params.items()) po.params[k] = v;
    po.check_include = [](const std::string& file) { return escapes(file); };
    Pipeline pipeline = Pipeline::from_text(e.text, e.path, po);
    const graph::Graph& g = pipeline.graph();
    if (auto p = path_problems(g); !p.empty()) throw graph::GraphError(p);
    // The document's own nodes (an include's nodes are its instance's), in the order they run.
    const bool has_nodes = e.doc.is_object() && e.doc.contains("nodes") && e.doc["nodes"].is_object();
    for (int i : g.order) {
      const std::string& id = g.nodes[size_t(i)].id;
      if (has_nodes && e.doc["nodes"].contains(id)) message(e, "executing", {{"node", id}, {"display_node", id}});
    }
    tools::RunObserver observer(pipeline);  // plans the run, makes its folder
    runtime::RunState* state = &pipeline.executor().state();
    const int64_t ticks = g.ticks;
    // Files the run writes: its outputs, and the images as previews.
    state->on_artifact = [&](const std::string& kind, const std::string& path, const std::string& node) {
      const fs::path fp(path);
      const std::string rel = fp.lexically_normal().generic_string();
      const std::string sub = fs::path(rel).parent_path().generic_string(), file = fs::path(rel).filename().string();
      const bool image = kind == "image";
      Json item = {{"filename", file}, {"subfolder", sub}, {"type", "output"}};
      if (!image) item["kind"] = kind;
      const std::string key = node.empty() ? kind : node, list = image ? "images" : "files";
      {
        std::lock_guard lock(m_);
        Json& out = e.outputs[key];
        if (!out.contains(list)) out[list] = Json::array();
        out[list].push_back(item);
      }
      if (image && node != kLossCurve) {
        if (auto png = read_file(rel, kViewLimit)) {
          int64_t tick = 0;
          {
            std::lock_guard lock(m_);
            tick = last_tick + 1;  // written during the tick after the last one reported
          }
          message(e, "preview", {{"node", key}, {"tick", tick}, {"kind", "image"}, {"filename", file}, {"subfolder", sub}});
          broadcast_binary(preview_frame(*png));
        }
      }
    };
    // x0 of the sampler's evaluations: at most 4 a second, and the last one.
    auto last_x0 = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    state->on_x0 = [&](const std::string& node, int64_t tick, const runtime::Tensor& x0) {
      const auto now = std::chrono::steady_clock::now();
      if (tick + 1 < ticks && now - last_x0 < std::chrono::milliseconds(250)) return;
      last_x0 = now;
      const std::string png = x0_png(x0);
      if (png.empty()) return;
      message(e, "preview", {{"node", node}, {"tick", tick + 1}, {"kind", "x0"}});
      broadcast_binary(preview_frame(png));
    };
    const std::string run_dir = observer.folder()->dir();
    {
      std::lock_guard lock(m_);
      e.run_dir = run_dir;
      exec_ = &pipeline.executor();
      if (cancel_) exec_->cancel();
    }
    auto last_progress = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    try {
      pipeline.run([&](const runtime::TickInfo& t) {
        const tools::Progress pr = observer.tick(t);
        const bool has_loss = pr.loss_now;
        const double loss = pr.loss;
        Json progress = {{"value", pr.value},      {"max", pr.max},     {"node", nullptr},
                         {"loss", has_loss ? Json(std::isfinite(loss) ? loss : 0.0) : Json(nullptr)},
                         {"ticks_per_s", pr.rate}, {"eta_s", pr.eta},   {"elapsed_s", pr.seconds}};
        {
          std::lock_guard lock(m_);
          last_tick = t.tick + 1;
          e.progress = progress;
          if (has_loss && (t.tick + 1) % e.loss_stride == 0) {
            e.loss.emplace_back(t.tick + 1, loss);
            if (e.loss.size() >= kLossPoints) {  // thin to every other point, keep that stride
              std::vector<std::pair<int64_t, double>> kept;
              for (size_t i = 1; i < e.loss.size(); i += 2) kept.push_back(e.loss[i]);
              e.loss = std::move(kept);
              e.loss_stride *= 2;
            }
          }
        }
        const auto now = std::chrono::steady_clock::now();
        if (t.tick + 1 == t.ticks || now - last_progress >= std::chrono::milliseconds(100)) {
          last_progress = now;
          message(e, "progress", progress);
        }
      });
    } catch (...) {
      observer.finish();
      std::lock_guard lock(m_);
      exec_ = nullptr;
      throw;
    }
    {
      std::lock_guard lock(m_);
      exec_ = nullptr;
    }
    observer.finish();
    if (observer.folder()->plotted()) state->artifact("image", run_dir + "/loss.png", kLossCurve);
  } catch (const runtime::Cancelled&) {
    status = "interrupted";
  } catch (const graph::GraphError& ge) {
    status = "error";
    Json dj = Json::array();
    for (auto& d : ge.diagnostics) dj.push_back(diag_json(d));
    error = {{"message", ge.what()},
             {"node_id", ge.diagnostics.empty() ? "" : ge.diagnostics[0].node},
             {"node_type", ""},
             {"exception_type", "GraphError"},
             {"diagnostics", dj}};
  } catch (const runtime::RunError& re) {
    status = "error";
    error = {{"message", re.what()},
             {"node_id", re.node},
             {"node_type", ""},
             {"exception_type", "RunError (" + re.phase + ")"},
             {"diagnostics", Json::array({diag_json(re.diagnostic)})}};
  } catch (const std::exception& ex) {
    status = "error";
    error = {{"message", ex.what()}, {"node_id", ""}, {"node_type", ""}, {"exception_type", "error"},
             {"diagnostics", Json::array()}};
  }
  // One executed per node that wrote images, with all of them, after the last progress (files such as
  // checkpoints are in the history's outputs only; so is the run folder's loss curve).
  std::vector<std::pair<std::string, Json>> executed;
  {
    std::lock_guard lock(m_);
    e.status = status;
    e.error = error;
    for (auto& [node, out] : e.outputs.items())
      if (node != kLossCurve && out.contains("images")) executed.emplace_back(node, Json{{"images", out["images"]}});
  }
  for (auto& [node, out] : executed) message(e, "executed", {{"node", node}, {"display_node", node}, {"output", out}});
  if (status == "success") {
    message(e, "execution_success", {{"timestamp", now_ms()}});
  } else if (status == "interrupted") {
    message(e, "execution_interrupted", {{"timestamp", now_ms()}, {"tick", last_tick}});
  } else {
    message(e, "execution_error", {{"timestamp", now_ms()},
                                   {"node_id", error["node_id"]},
                                   {"node_type", error["node_type"]},
                                   {"exception_message", error["message"]},
                                   {"exception_type", error["exception_type"]},
                                   {"diagnostics", error["diagnostics"]}});
    std::cerr << "noiseflow studio: run " << e.id << " (" << e.path << ") failed: " << error["message"].get<std::string>()
              << "\n";
  }
  message(e, "executing", {{"node", nullptr}});
}

void Studio::stop() {
  {
    std::lock_guard lock(m_);
    stopping_ = true;
    cancel_ = true;
    if (exec_) exec_->cancel();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

}  // namespace noiseflow::studio
