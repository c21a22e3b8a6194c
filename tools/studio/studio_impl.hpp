// tools/studio/studio_impl.hpp — the studio inside `noiseflow serve` (tools/studio/studio.hpp): its run
// entries, the Studio (routes and queue: routes.cpp; runs on the worker thread: runs.cpp), the API's JSON
// shapes (api_json.cpp) and the project-folder path rules the routes and runs share.
//
//   io thread (Boost.Asio)                       worker thread
//   ──────────────────────                       ─────────────
//   HTTP sessions ──> Studio::handle() ──queue──> run(): Pipeline::from_text, RunObserver, run
//   WebSocket sessions <──post(broadcast)──────── progress / preview / executed / ...
//
// Everything that touches a socket runs on the io thread; the worker hands it messages with post(). The
// queue, the history and the running run are guarded by one mutex.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "graph/pipeline.hpp"
#include "tools/studio/http.hpp"
#include "tools/studio/studio.hpp"

namespace noiseflow::runtime {
class Executor;
}

namespace noiseflow::studio {

namespace fs = std::filesystem;

inline constexpr size_t kHistoryLimit = 100;         ///< finished runs kept
inline constexpr size_t kLossPoints = 5000;          ///< (tick, loss) pairs kept per run, thinned beyond
inline constexpr uintmax_t kViewLimit = 256u << 20;  ///< files /view serves
inline const std::string kLossCurve = "loss_curve";  ///< the output name of the run folder's loss.png
inline const std::string kPromptPath = "pipelines/prompt.json";  ///< the path of a POST /prompt without one

/// Milliseconds since the epoch.
int64_t now_ms();

// ---- paths (routes.cpp) -------------------------------------------------------------------------------

/// A path given to the API: relative, no ".." component, not empty; returns it normalised ("a/b.json").
std::string api_path(const std::string& p, const std::string& what);
/// A path a pipeline names (relative to `base`): empty when it stays inside the project folder, else why not.
std::string escapes(const std::string& p, const fs::path& base = {});
/// Paths a validated graph names that leave the project folder, as diagnostics on their nodes.
std::vector<graph::Diagnostic> path_problems(const graph::Graph& g);
/// The content type of a file, by its extension.
std::string content_type(const fs::path& p);
/// A file's bytes; nullopt when it is no regular file; throws ApiError when over `limit`.
std::optional<std::string> read_file(const fs::path& p, uintmax_t limit);

// ---- runs ---------------------------------------------------------------------------------------------

/// A submitted run: what to run, and what it reported (under Studio::m_ once queued).
struct RunEntry {
  std::string id, path, text, name, client_id, run_dir;
  Json doc = nullptr;        ///< the document run, parsed once (text is what the run loads)
  Json submitted = nullptr;  ///< the prompt as submitted: ComfyUI's API format, or the document
  Json extra_data = Json::object();          ///< the submission's extra_data, with its client_id
  Json outputs_to_execute = Json::array();  ///< the output nodes (node types without outputs)
  int64_t number = 0;
  Json params = Json::object();
  std::string status = "pending";
  Json messages = Json::array();
  Json outputs = Json::object();
  Json progress = nullptr;
  Json error = nullptr;
  std::vector<std::pair<int64_t, double>> loss;
  int64_t loss_stride = 1;
};

/// The history entry of a run (api_json.cpp; docs/API.md, "GET /history").
Json history_entry(const RunEntry& e);

// ---- the API's JSON (api_json.cpp) --------------------------------------------------------------------

/// A node type as /object_info describes it: ComfyUI's fields, the attributes, the schema itself.
Json object_info(const graph::Schema& s);
/// A diagnostic as the API sends it: {file, node, field, code, message, text}.
Json diag_json(const graph::Diagnostic& d);
/// /system_stats.
Json system_stats();

// ---- the studio ---------------------------------------------------------------------------------------

class Studio : public Hub {
 public:
  Studio(const ServeOptions& o, net::io_context& ioc, fs::path web) : opt_(o), ioc_(ioc), web_(std::move(web)) {}

  Response handle(const Request& req) override;
  void join(const std::shared_ptr<WsSession>& s, const std::string& client_id) override;
  void leave(WsSession* s) override { sessions_.erase(s); }
  /// Starts the worker thread.
  void start() { worker_ = std::thread([this] { work(); }); }
  /// Stops the running run after its tick and joins the worker.
  void stop();

 private:
  // routes.cpp
  Response route(const Request& req, const Target& t);
  Response serve_static(const Request& req, const Target& t);
  Json check(const Json& body, bool for_run, std::string* text_out, std::string* path_out, Json* params_out,
             std::vector<graph::Diagnostic>* diags_out);
  graph::LoadOptions load_options(const Json& params) const;
  Json prompt(const Json& body);
  Json save(const Json& body, const std::string& raw);
  Json interrupt(const Json& body);
  Json queue_json();
  Json history_json(const Target& t, const std::string& id);
  Json clear_history(const Json& body);
  Response view(const Request& req, const Target& t);

  // runs.cpp
  void work();
  void run(const std::shared_ptr<RunEntry>& e);
  void broadcast(const Json& msg);
  void broadcast_binary(std::string frame);
  void fan_out(std::shared_ptr<const std::string> msg, bool binary);
  Json status_message();
  void send_status();
  void message(RunEntry& e, const std::string& type, Json data);

  ServeOptions opt_;
  net::io_context& ioc_;
  fs::path web_;
  std::map<WsSession*, std::weak_ptr<WsSession>> sessions_;  // io thread only

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<RunEntry>> pending_;
  std::shared_ptr<RunEntry> running_;
  std::vector<std::shared_ptr<RunEntry>> history_;  // every entry, oldest first
  runtime::Executor* exec_ = nullptr;               // the running run's, while it runs
  bool cancel_ = false, stopping_ = false;
  int64_t number_ = 0;
  std::thread worker_;
};

}  // namespace noiseflow::studio
