// tools/studio/routes.cpp — the studio's routes (docs/API.md): node types, pipelines, checking, saving,
// the queue and the history; the project folder's path rules; and `noiseflow serve` itself.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/signal_set.hpp>

#include "runtime/atomic_write.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "tools/studio/comfy_prompt.hpp"
#include "tools/studio/studio_impl.hpp"

#ifndef NOISEFLOW_WEB_DIR
#define NOISEFLOW_WEB_DIR "web"
#endif

namespace noiseflow::studio {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

Json parse_body(const Request& req) {
  if (req.body().empty()) return Json::object();
  try {
    Json j = Json::parse(req.body());
    if (!j.is_object()) throw ApiError(http::status::bad_request, "bad_json", "the request body must be a JSON object");
    return j;
  } catch (const Json::parse_error& e) {
    // nlohmann's message says where: "parse error at line 3, column 5: syntax error while parsing ...".
    std::string m = e.what();
    if (const auto p = m.find("parse error"); p != std::string::npos) m = m.substr(p);
    throw ApiError(http::status::bad_request, "bad_json", "malformed JSON in the request body: " + m);
  }
}

// A POST body is JSON. A browser's request (it carries an Origin, this server's: same_origin() refused the
// others) must say so with Content-Type: application/json, as the page does; a request without an Origin
// (a program: Node's fetch sends a string body as text/plain) may send JSON under any type but a form's.
void check_content_type(const Request& req) {
  const auto ct = req.find(http::field::content_type);
  const std::string type = ct == req.end() ? std::string() : std::string(ct->value());
  const bool json = type.rfind("application/json", 0) == 0;
  const bool form = type.rfind("application/x-www-form-urlencoded", 0) == 0 || type.rfind("multipart/form-data", 0) == 0;
  const bool browser = req.find(http::field::origin) != req.end();
  if (!json && (browser || form))
    throw ApiError(http::status::unsupported_media_type, "bad_content_type",
                   "POST bodies are JSON: send Content-Type: application/json");
}

// What a POST /queue or /history body asks to remove (ComfyUI's shape): the ids of {"delete": [...]}, and
// whether {"clear": true} asks for all.
struct Removal {
  std::set<std::string> ids;
  bool all = false;
  bool covers(const std::string& id) const { return all || ids.count(id); }
};

Removal removal_of(const Json& body) {
  Removal r;
  if (body.contains("delete") && body["delete"].is_array())
    for (auto& d : body["delete"])
      if (d.is_string()) r.ids.insert(d.get<std::string>());
  r.all = body.contains("clear") && body["clear"] == true;
  return r;
}

}  // namespace

// ---- paths --------------------------------------------------------------------------------------------

// A path given to the API: relative, no ".." component, not empty; returns it normalised ("a/b.json").
std::string api_path(const std::string& p, const std::string& what) {
  if (p.empty()) throw ApiError(http::status::bad_request, "bad_path", what + " is empty");
  if (p.find('\0') != std::string::npos || p.find('\\') != std::string::npos)
    throw ApiError(http::status::forbidden, "path_refused", what + " \"" + p + "\": no backslashes or NULs");
  const fs::path path(p);
  if (path.is_absolute() || p[0] == '/')
    throw ApiError(http::status::forbidden, "path_refused",
                   what + " \"" + p + "\" is absolute: paths are relative to the project folder");
  for (const auto& part : path)
    if (part == "..")
      throw ApiError(http::status::forbidden, "path_refused",
                     what + " \"" + p + "\" has a \"..\" component: paths stay inside the project folder");
  std::string n = path.lexically_normal().generic_string();
  if (n.empty() || n == ".") throw ApiError(http::status::bad_request, "bad_path", what + " names no file");
  return n;
}

// A path a pipeline names (relative to `base`, a folder in the project): empty when it stays inside the
// project folder once normalised, else why not.
std::string escapes(const std::string& p, const fs::path& base) {
  if (p.empty()) return {};
  if (fs::path(p).is_absolute() || p[0] == '/')
    return "\"" + p + "\" is an absolute path: the studio keeps every file inside its project folder";
  const std::string n = (base / p).lexically_normal().generic_string();
  if (n == ".." || n.rfind("../", 0) == 0)
    return "\"" + p + "\" leads out of the project folder: the studio keeps every file inside it";
  return {};
}

std::string content_type(const fs::path& p) {
  const std::string e = p.extension().string();
  if (e == ".html") return "text/html; charset=utf-8";
  if (e == ".js" || e == ".mjs") return "text/javascript; charset=utf-8";
  if (e == ".css") return "text/css; charset=utf-8";
  if (e == ".json" || e == ".map") return "application/json";
  if (e == ".png") return "image/png";
  if (e == ".svg") return "image/svg+xml";
  if (e == ".csv" || e == ".txt" || e == ".md") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

std::optional<std::string> read_file(const fs::path& p, uintmax_t limit) {
  std::error_code ec;
  if (!fs::is_regular_file(p, ec)) return std::nullopt;
  if (fs::file_size(p, ec) > limit) throw ApiError(http::status::payload_too_large, "file_too_large", p.string() + " is too large to serve");
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

// The attributes that name files; other string attributes are checked too when they look like paths.
bool names_a_file(const std::string& attr, const std::string& v) {
  static const std::set<std::string> names{"path", "dir", "folder", "pipeline", "classifier", "checkpoint", "file"};
  return names.count(attr) || v.find('/') != std::string::npos;
}

}  // namespace

// Paths a validated graph names that leave the project folder, as diagnostics on their nodes.
std::vector<graph::Diagnostic> path_problems(const graph::Graph& g) {
  std::vector<graph::Diagnostic> out;
  if (g.name.find('/') != std::string::npos || g.name.find('\\') != std::string::npos || g.name == ".." ||
      g.name == "." || g.name.empty())
    out.push_back({g.file, "", "name", "path_refused",
                   "the pipeline's name \"" + g.name + "\" names its run folder runs/NAME: use a plain name"});
  for (const auto& n : g.nodes) {
    if (!n.attrs.is_object()) continue;
    for (const auto& [k, v] : n.attrs.items()) {
      if (!v.is_string()) continue;
      const std::string s = v.get<std::string>();
      if (!names_a_file(k, s)) continue;
      if (std::string why = escapes(s); !why.empty())
        out.push_back({n.file, n.id, "attr \"" + k + "\"", "path_refused", why});
    }
  }
  return out;
}

namespace {
// The page's folder: --web, else ROOT/web when it holds the page, else the source tree's web/.
fs::path web_folder(const ServeOptions& o) {
  if (!o.web.empty()) return fs::absolute(o.web).lexically_normal();
  if (fs::is_regular_file(fs::path(o.root) / "web/index.html")) return fs::absolute(fs::path(o.root) / "web").lexically_normal();
  return fs::path(NOISEFLOW_WEB_DIR);
}

}  // namespace

// ---- Studio: requests ---------------------------------------------------------------------------------

Response Studio::handle(const Request& req) {
  try {
    return route(req, parse_target(req.target()));
  } catch (const ApiError& e) {
    return error_response(req, e);
  } catch (const std::exception& e) {
    return error_response(req, ApiError(http::status::internal_server_error, "internal", e.what()));
  }
}

Response Studio::route(const Request& req, const Target& t) {
  const auto method = req.method();
  const std::string& p = t.path;
  if (method == http::verb::post) {
    if (!same_origin(req))
      throw ApiError(http::status::forbidden, "cross_origin", "requests from another site's page are refused");
    if (!req.body().empty()) check_content_type(req);
    const Json body = parse_body(req);
    if (p == "/check") return json_response(req, http::status::ok, check(body, false, nullptr, nullptr, nullptr, nullptr));
    if (p == "/prompt") return json_response(req, http::status::ok, prompt(body));
    if (p == "/save") return json_response(req, http::status::ok, save(body, req.body()));
    if (p == "/interrupt") return json_response(req, http::status::ok, interrupt(body));
    if (p == "/queue") {
      Json deleted = Json::array();
      {
        std::lock_guard lock(m_);
        const Removal removal = removal_of(body);
        for (auto it = pending_.begin(); it != pending_.end();) {
          if (removal.covers((*it)->id)) {
            deleted.push_back((*it)->id);
            history_.erase(std::remove(history_.begin(), history_.end(), *it), history_.end());
            it = pending_.erase(it);
          } else {
            ++it;
          }
        }
      }
      send_status();
      return json_response(req, http::status::ok, {{"deleted", deleted}});
    }
    if (p == "/history") return json_response(req, http::status::ok, clear_history(body));
    throw ApiError(http::status::not_found, "not_found", "no POST endpoint " + p + " (docs/API.md)");
  }
  if (method != http::verb::get && method != http::verb::head)
    throw ApiError(http::status::method_not_allowed, "method_not_allowed", "only GET and POST are served");

  if (p == "/object_info") {
    Json all = Json::object();
    auto& reg = runtime::Registry::global();
    for (auto& op : reg.ops()) all[op] = object_info(reg.find(op)->schema);
    return json_response(req, http::status::ok, all);
  }
  if (p.rfind("/object_info/", 0) == 0) {
    const std::string op = p.substr(13);
    auto& reg = runtime::Registry::global();
    if (auto* e = reg.find(op)) return json_response(req, http::status::ok, {{op, object_info(e->schema)}});
    return json_response(req, http::status::ok, Json::object());  // as ComfyUI answers an unknown node type
  }
  if (p == "/pipelines") {
    std::vector<std::string> files;
    std::error_code ec;
    for (fs::recursive_directory_iterator it("pipelines", fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec))
      if (it->is_regular_file() && it->path().extension() == ".json") files.push_back(it->path().generic_string());
    std::sort(files.begin(), files.end());
    return json_response(req, http::status::ok, {{"files", files}});
  }
  if (p == "/file") {
    const std::string path = api_path(t.arg("path"), "path");
    if (fs::path(path).extension() != ".json")
      throw ApiError(http::status::bad_request, "bad_path", "path \"" + path + "\": only .json files are read here");
    auto text = read_file(path, kBodyLimit);
    if (!text) throw ApiError(http::status::not_found, "not_found", "no file " + path + " in the project folder");
    return file_response(req, std::move(*text), "application/json", "no-store");
  }
  if (p == "/queue") return json_response(req, http::status::ok, queue_json());
  if (p == "/prompt") {
    std::lock_guard lock(m_);
    const size_t remaining = pending_.size() + (running_ ? 1 : 0);
    return json_response(req, http::status::ok, {{"exec_info", {{"queue_remaining", remaining}}}});
  }
  if (p == "/history") return json_response(req, http::status::ok, history_json(t, ""));
  if (p.rfind("/history/", 0) == 0) return json_response(req, http::status::ok, history_json(t, p.substr(9)));
  if (p == "/view") return view(req, t);
  if (p == "/system_stats") return json_response(req, http::status::ok, system_stats());
  return serve_static(req, t);
}

Response Studio::serve_static(const Request& req, const Target& t) {
  std::string rel = t.path == "/" ? "index.html" : t.path.substr(1);
  rel = api_path(rel, "file");
  fs::path file = web_ / rel;
  if (fs::is_directory(file)) file /= "index.html";
  auto body = read_file(file, kViewLimit);
  if (!body) throw ApiError(http::status::not_found, "not_found", "no file " + t.path + " (the page is in web/)");
  return file_response(req, std::move(*body), content_type(file), "no-cache");
}

Response Studio::view(const Request& req, const Target& t) {
  const std::string sub = t.arg("subfolder"), name = t.arg("filename");
  const std::string path = api_path(sub.empty() ? name : sub + "/" + name, "filename");
  if (path.rfind("runs/", 0) != 0 && path.rfind("pipelines/", 0) != 0)
    throw ApiError(http::status::forbidden, "path_refused",
                   "\"" + path + "\": /view serves files under runs/ and pipelines/ only");
  auto body = read_file(path, kViewLimit);
  if (!body) throw ApiError(http::status::not_found, "not_found", "no file " + path + " in the project folder");
  return file_response(req, std::move(*body), content_type(path), "no-cache");
}

graph::LoadOptions Studio::load_options(const Json& params) const {
  graph::LoadOptions lo;
  lo.schemas = &runtime::Registry::global();
  for (auto& [k, v] : params.items()) lo.overrides[k] = v;
  lo.check_include = [](const std::string& file) { return escapes(file); };
  return lo;
}

// Validates the body's pipeline as `noiseflow check` does; with for_run, hands back what a run needs.
Json Studio::check(const Json& body, bool for_run, std::string* text_out, std::string* path_out, Json* params_out,
                   std::vector<graph::Diagnostic>* diags_out) {
  if (!body.contains("path") || !body["path"].is_string())
    throw ApiError(http::status::bad_request, "bad_request", "\"path\" (the pipeline's path, e.g. pipelines/train.json) is required");
  const std::string path = api_path(body["path"].get<std::string>(), "path");
  if (fs::path(path).extension() != ".json")
    throw ApiError(http::status::bad_request, "bad_path", "path \"" + path + "\" is not a .json file");
  std::string text;
  const Json* doc = body.contains("pipeline") ? &body["pipeline"] : body.contains("prompt") ? &body["prompt"] : nullptr;
  if (doc) {
    if (!doc->is_object())
      throw ApiError(http::status::bad_request, "bad_request", "\"pipeline\" must be a pipeline document (a JSON object)");
    text = doc->dump(2);
  } else {
    auto t = read_file(path, kBodyLimit);
    if (!t) throw ApiError(http::status::not_found, "not_found", "no file " + path + " in the project folder");
    text = std::move(*t);
  }
  Json params = Json::object();
  if (body.contains("params")) {
    if (!body["params"].is_object())
      throw ApiError(http::status::bad_request, "bad_request", "\"params\" must be an object of param: value");
    params = body["params"];
  }
  std::vector<graph::Diagnostic> diags;
  Json gj = nullptr;
  try {
    graph::Graph g = graph::load_pipeline_text(text, path, load_options(params));
    diags = path_problems(g);
    if (diags.empty()) {
      Json nodes = Json::array();
      for (int i : g.order) {
        const auto& n = g.nodes[size_t(i)];
        Json ins = Json::object(), outs = Json::array();
        for (size_t k = 0; k < n.inputs.size(); ++k)
          if (n.inputs[k]) ins[n.schema->inputs()[k].name] = g.ref_name(*n.inputs[k]);
        for (size_t k = 0; k < n.output_shapes.size(); ++k)
          outs.push_back({{"name", n.schema->outputs()[k].name}, {"shape", n.output_shapes[k]}});
        nodes.push_back({{"id", n.id}, {"op", n.op}, {"file", n.file}, {"inputs", ins}, {"outputs", outs},
                         {"attrs", n.attrs}, {"every", n.every}, {"at_end", n.at_end}});
      }
      gj = {{"name", g.name}, {"ticks", g.ticks}, {"seed", g.seed}, {"param_count", g.param_count()},
            {"params", g.params}, {"nodes", nodes}};
    }
  } catch (const graph::GraphError& e) {
    diags = e.diagnostics;
  }
  if (for_run) {
    *text_out = text;
    *path_out = path;
    *params_out = params;
    *diags_out = diags;
  }
  Json dj = Json::array();
  for (auto& d : diags) dj.push_back(diag_json(d));
  return {{"ok", diags.empty()}, {"diagnostics", dj}, {"graph", diags.empty() ? gj : Json(nullptr)}};
}

Json Studio::prompt(const Json& body_in) {
  Json body = body_in;
  // ComfyUI's API format: translated to a document first (tools/studio/comfy_prompt.hpp).
  Json submitted = body.contains("pipeline") ? body["pipeline"] : body.contains("prompt") ? body["prompt"] : Json(nullptr);
  const bool api = !body.contains("pipeline") && body.contains("prompt") && is_api_format(body["prompt"]);
  std::string run_node;
  Json outputs = Json::array();
  if (api) {
    ApiPrompt t = translate_api_prompt(body["prompt"], runtime::Registry::global());
    if (!t.error.is_null()) {
      std::string details;
      for (auto& [id, ne] : t.node_errors.items())
        for (auto& e : ne["errors"]) details += "node \"" + id + "\": " + e["message"].get<std::string>() + "\n";
      throw ApiError(http::status::bad_request, t.error["type"].get<std::string>(), t.error["message"].get<std::string>(),
                     {{"node_errors", t.node_errors}, {"diagnostics", Json::array()}, {"details", details},
                      {"extra_info", t.error["extra_info"]}});
    }
    for (auto& [id, n] : body["prompt"].items())
      if (n.is_object() && n.value("class_type", Json()) == kRunClass) run_node = id;
    body["pipeline"] = t.doc;
    body.erase("prompt");
    for (auto& o : t.outputs) outputs.push_back(o);
  }
  if (!body.contains("path")) body["path"] = kPromptPath;
  std::string text, path;
  Json params;
  std::vector<graph::Diagnostic> diags;
  Json checked = check(body, true, &text, &path, &params, &diags);
  const Json doc = Json::parse(text, nullptr, false);  // discarded (not thrown) when the text is no JSON
  if (!diags.empty()) {
    // The run settings' problems belong to the noiseflow.run node of an API-format prompt.
    if (!run_node.empty())
      for (auto& d : diags)
        if (d.node.empty() && (d.field == "run" || d.field == "name")) d.node = run_node;
    Json ne = node_errors(diags, doc);
    if (!run_node.empty() && ne.contains(run_node)) ne[run_node]["class_type"] = kRunClass;
    std::string details;
    for (auto& d : diags) details += d.str() + "\n";
    throw ApiError(http::status::bad_request, "invalid_prompt",
                   std::to_string(diags.size()) + (diags.size() == 1 ? " problem" : " problems") + " in " +
                       (api ? std::string("the prompt") : path),
                   {{"node_errors", ne}, {"diagnostics", checked["diagnostics"]}, {"details", details},
                    {"extra_info", Json::object()}});
  }
  if (!api)  // the output nodes: the document's own nodes without outputs
    for (auto& n : checked["graph"]["nodes"])
      if (n["outputs"].empty() && doc.is_object() && doc.contains("nodes") && doc["nodes"].contains(n["id"].get<std::string>()))
        outputs.push_back(n["id"]);
  auto e = std::make_shared<RunEntry>();
  e->id = new_id();
  e->path = path;
  e->text = text;
  e->doc = doc;
  e->submitted = submitted.is_null() ? doc : submitted;  // the file's document when none was sent
  e->outputs_to_execute = outputs;
  e->params = params;
  e->name = checked["graph"]["name"].get<std::string>();
  e->client_id = body.contains("client_id") && body["client_id"].is_string() ? body["client_id"].get<std::string>() : "";
  e->extra_data = body.contains("extra_data") && body["extra_data"].is_object() ? body["extra_data"] : Json::object();
  if (!e->client_id.empty()) e->extra_data["client_id"] = e->client_id;
  {
    std::lock_guard lock(m_);
    if (stopping_) throw ApiError(http::status::service_unavailable, "stopping", "the server is stopping");
    e->number = number_++;
    pending_.push_back(e);
    history_.push_back(e);
  }
  cv_.notify_all();
  send_status();
  return {{"prompt_id", e->id}, {"number", e->number}, {"node_errors", Json::object()}};
}

Json Studio::save(const Json& body, const std::string& raw) {
  if (!body.contains("path") || !body["path"].is_string())
    throw ApiError(http::status::bad_request, "bad_request", "\"path\" (where to save, under pipelines/) is required");
  const std::string path = api_path(body["path"].get<std::string>(), "path");
  if (path.rfind("pipelines/", 0) != 0 || fs::path(path).extension() != ".json")
    throw ApiError(http::status::forbidden, "path_refused",
                   "\"" + path + "\": pipelines are saved as .json files under pipelines/");
  if (!body.contains("pipeline") || !body["pipeline"].is_object())
    throw ApiError(http::status::bad_request, "bad_request", "\"pipeline\" (the document to save) must be a JSON object");
  // Written in the document's own key order (nlohmann::ordered_json), so saving an unedited file keeps its
  // layout of params, include, nodes and run.
  const std::string text = nlohmann::ordered_json::parse(raw)["pipeline"].dump(2) + "\n";
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  runtime::write_file_atomically(path, {text}, [&](const std::string& m) {
    throw ApiError(http::status::internal_server_error, "write_failed", path + ": " + m);
  });
  Json c = check({{"path", path}}, false, nullptr, nullptr, nullptr, nullptr);
  return {{"saved", path}, {"bytes", text.size()}, {"ok", c["ok"]}, {"diagnostics", c["diagnostics"]}};
}

Json Studio::interrupt(const Json& body) {
  std::lock_guard lock(m_);
  if (!running_) return {{"interrupted", nullptr}};
  if (body.contains("prompt_id") && body["prompt_id"].is_string() && body["prompt_id"] != running_->id)
    return {{"interrupted", nullptr}};
  cancel_ = true;
  if (exec_) exec_->cancel();
  return {{"interrupted", running_->id}};
}

Json Studio::queue_json() {
  std::lock_guard lock(m_);
  Json running = Json::array(), pending = Json::array();
  if (running_) running.push_back({running_->number, running_->id, running_->path});
  for (auto& e : pending_) pending.push_back({e->number, e->id, e->path});
  return {{"queue_running", running}, {"queue_pending", pending}};
}

Json Studio::history_json(const Target& t, const std::string& id) {
  std::lock_guard lock(m_);
  Json out = Json::object();
  if (!id.empty()) {
    for (auto& e : history_)
      if (e->id == id) return {{id, history_entry(*e)}};
    return Json::object();  // as ComfyUI answers an unknown id
  }
  size_t max_items = history_.size();
  if (const std::string m = t.arg("max_items"); !m.empty()) {
    try {
      max_items = std::min(max_items, size_t(std::max(0LL, std::stoll(m))));
    } catch (...) {
      throw ApiError(http::status::bad_request, "bad_request", "max_items must be a number");
    }
  }
  for (size_t i = history_.size() - max_items; i < history_.size(); ++i) out[history_[i]->id] = history_entry(*history_[i]);
  return out;
}

Json Studio::clear_history(const Json& body) {
  std::lock_guard lock(m_);
  const Removal removal = removal_of(body);
  // Waiting and running runs stay: POST /queue and /interrupt are for those.
  history_.erase(std::remove_if(history_.begin(), history_.end(),
                                [&](const std::shared_ptr<RunEntry>& e) {
                                  return e->status != "pending" && e->status != "running" && removal.covers(e->id);
                                }),
                 history_.end());
  return Json::object();
}

int serve(const ServeOptions& o) {
  std::error_code ec;
  if (!fs::is_directory(o.root, ec)) throw std::runtime_error("noiseflow serve: --root " + o.root + " is not a folder");
  const fs::path web = web_folder(o);  // before moving into the project folder
  fs::current_path(o.root);
  if (!fs::is_regular_file(web / "index.html"))
    std::cerr << "noiseflow serve: warning: no page at " << (web / "index.html").string()
              << " (the API is served; pass --web with the repository's web/ folder)\n";

  net::io_context ioc{1};
  Studio studio(o, ioc, web);
  boost::system::error_code bec;
  const auto address = net::ip::make_address(o.host, bec);
  if (bec) throw std::runtime_error("noiseflow serve: --host " + o.host + " is not an IP address: " + bec.message());
  if (o.port < 0 || o.port > 65535) throw std::runtime_error("noiseflow serve: --port must be 0..65535");
  std::shared_ptr<Listener> listener;
  try {
    listener = std::make_shared<Listener>(ioc, tcp::endpoint{address, uint16_t(o.port)}, studio);
  } catch (const boost::system::system_error& se) {
    throw std::runtime_error("noiseflow serve: cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                             se.code().message());
  }
  const std::string host = address.is_v6() ? "[" + o.host + "]" : o.host;
  std::cout << "noiseflow studio: http://" << host << ":" << listener->port() << "/" << std::endl;
  std::cerr << "noiseflow serve: project folder " << fs::current_path().string() << ", page from " << web.string()
            << (address.is_loopback() ? "" : "; listening beyond loopback: anyone who reaches the port can run pipelines")
            << "; Ctrl-C stops\n";
  listener->run();
  studio.start();
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    std::cerr << "noiseflow serve: stopping (a running run stops after its tick)\n";
    listener->stop();
    ioc.stop();
  });
  ioc.run();
  studio.stop();
  return 0;
}

}  // namespace noiseflow::studio
