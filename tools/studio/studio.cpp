// tools/studio/studio.cpp — `noiseflow serve` (tools/studio/studio.hpp; the API in docs/API.md).
//
//   io thread (Boost.Asio)                       worker thread
//   ──────────────────────                       ─────────────
//   HTTP sessions ──> Studio::handle() ──queue──> run(): load, plan, Executor::run
//   WebSocket sessions <──post(broadcast)──────── progress / preview / executed / ...
//
// Everything that touches a socket runs on the io thread; the worker hands it messages with post(). The
// queue, the history and the running run are guarded by one mutex.
#include "tools/studio/studio.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "graph/pipeline.hpp"
#include "nodes/draw/plot.hpp"
#include "nodes/draw/png_grid.hpp"
#include "runtime/atomic_write.hpp"
#include "runtime/errors.hpp"
#include "runtime/exec/executor.hpp"
#include "runtime/node.hpp"
#include "runtime/run_state.hpp"
#include "runtime/tensor.hpp"
#include "tools/run_folder.hpp"

#ifndef NOISEFLOW_WEB_DIR
#define NOISEFLOW_WEB_DIR "web"
#endif

namespace noiseflow::studio {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using Json = nlohmann::json;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr uint64_t kBodyLimit = 8u << 20;    // request bodies (pipelines)
constexpr uint32_t kHeaderLimit = 64u << 10;  // request heads
constexpr size_t kHistoryLimit = 100;         // finished runs kept
constexpr size_t kLossPoints = 5000;          // (tick, loss) pairs kept per run, thinned beyond
constexpr uintmax_t kViewLimit = 256u << 20;  // files /view serves
const std::string kLossCurve = "loss_curve";  // the output name of the run folder's loss.png

// An API failure: HTTP status, error type, message, and more fields for the body.
struct ApiError : std::runtime_error {
  http::status status;
  std::string type;
  Json extra;
  ApiError(http::status s, std::string t, const std::string& m, Json e = Json::object())
      : std::runtime_error(m), status(s), type(std::move(t)), extra(std::move(e)) {}
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex m;
  std::lock_guard lock(m);
  char b[40];
  std::snprintf(b, sizeof b, "%016llx%016llx", (unsigned long long)rng(), (unsigned long long)rng());
  return std::string(b, 8) + "-" + std::string(b + 8, 4) + "-" + std::string(b + 12, 4) + "-" +
         std::string(b + 16, 4) + "-" + std::string(b + 20, 12);
}

// ---- requests -----------------------------------------------------------------------------------------

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit((unsigned char)s[i + 1]) &&
               std::isxdigit((unsigned char)s[i + 2])) {
      out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::map<std::string, std::string> query;
  std::string arg(const std::string& k) const {
    auto it = query.find(k);
    return it == query.end() ? std::string() : it->second;
  }
};

Target parse_target(beast::string_view bt) {
  const std::string_view t(bt.data(), bt.size());
  Target out;
  const size_t q = t.find('?');
  out.path = url_decode(t.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view rest = t.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const size_t eq = kv.find('=');
    out.query[url_decode(kv.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

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
std::string escapes(const std::string& p, const fs::path& base = {}) {
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

// ---- schemas ------------------------------------------------------------------------------------------

std::string type_name(graph::AttrType t) {
  switch (t) {
    case graph::AttrType::Int: return "int";
    case graph::AttrType::Float: return "float";
    case graph::AttrType::Bool: return "bool";
    case graph::AttrType::String: return "string";
    case graph::AttrType::IntList: return "int_list";
    case graph::AttrType::FloatList: return "float_list";
    case graph::AttrType::Any: return "any";
  }
  return "any";
}

// A node type as /object_info describes it: ComfyUI's fields, the attributes, the schema itself.
Json object_info(const graph::Schema& s) {
  Json required = Json::object(), optional = Json::object(), req_order = Json::array(), opt_order = Json::array();
  for (const auto& in : s.inputs()) {
    Json spec = Json::array({"TENSOR", {{"tooltip", in.doc}, {"differentiable", in.differentiable}}});
    (in.optional ? optional : required)[in.name] = spec;
    (in.optional ? opt_order : req_order).push_back(in.name);
  }
  Json outputs = Json::array(), names = Json::array(), tips = Json::array();
  for (const auto& o : s.outputs()) outputs.push_back("TENSOR"), names.push_back(o.name), tips.push_back(o.doc);
  Json attrs = Json::array();
  for (const auto& a : s.attrs()) {
    Json j = {{"name", a.name}, {"type", type_name(a.type)}, {"required", a.required()}, {"doc", a.doc}};
    if (!a.required()) j["default"] = a.default_value;
    if (a.min) j["min"] = *a.min;
    if (a.max) j["max"] = *a.max;
    if (!a.choices.empty()) j["choices"] = a.choices;
    attrs.push_back(j);
  }
  const std::string& op = s.op();
  const size_t dot = op.find('.');
  return {{"name", op},
          {"display_name", dot == std::string::npos ? op : op.substr(dot + 1)},
          {"category", dot == std::string::npos ? std::string("core") : op.substr(0, dot)},
          {"description", s.doc()},
          {"input", {{"required", required}, {"optional", optional}}},
          {"input_order", {{"required", req_order}, {"optional", opt_order}}},
          {"output", outputs},
          {"output_name", names},
          {"output_tooltips", tips},
          {"output_node", s.outputs().empty()},
          {"attrs", attrs},
          {"schema", s.to_json()}};
}

Json diag_json(const graph::Diagnostic& d) {
  return {{"file", d.file}, {"node", d.node}, {"field", d.field}, {"code", d.code}, {"message", d.message},
          {"text", d.str()}};
}

// The attributes that name files; other string attributes are checked too when they look like paths.
bool names_a_file(const std::string& attr, const std::string& v) {
  static const std::set<std::string> names{"path", "dir", "folder", "pipeline", "classifier", "checkpoint", "file"};
  return names.count(attr) || v.find('/') != std::string::npos;
}

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

// ---- the studio ---------------------------------------------------------------------------------------

class WsSession;

struct RunEntry {
  std::string id, path, text, name, client_id, run_dir;
  Json doc = nullptr;  // the submitted document, parsed once (text is what the run loads)
  int64_t number = 0;
  Json params = Json::object();
  std::string status = "pending";
  Json messages = Json::array();
  Json outputs = Json::object();
  Json progress = nullptr;
  Json error = nullptr;
  std::vector<std::pair<int64_t, double>> loss;
  int64_t loss_stride = 1;

  Json history() const {
    Json l = Json::array();
    for (auto& [t, v] : loss) l.push_back({t, std::isfinite(v) ? Json(v) : Json(nullptr)});
    const bool done = status == "success" || status == "error" || status == "interrupted";
    const Json prompt = {{"path", path}, {"params", params}, {"name", name}, {"pipeline", doc}};
    return {{"number", number},
            {"prompt", prompt},
            {"status", {{"status_str", status}, {"completed", status == "success"}, {"done", done},
                        {"messages", messages}}},
            {"progress", progress},
            {"loss", l},
            {"outputs", outputs},
            {"run_dir", run_dir},
            {"error", error}};
  }
};

class Studio {
 public:
  Studio(const ServeOptions& o, net::io_context& ioc, fs::path web) : opt_(o), ioc_(ioc), web_(std::move(web)) {}

  Response handle(const Request& req);
  void join(const std::shared_ptr<WsSession>& s, const std::string& client_id);
  void leave(WsSession* s) { sessions_.erase(s); }
  void start() { worker_ = std::thread([this] { work(); }); }
  void stop();
  /// True when a request's Origin (if any) is this server: a page elsewhere may not drive it.
  static bool same_origin(const Request& req);

 private:
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
  Response view(const Request& req, const Target& t);

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

// ---- WebSocket and HTTP sessions ----------------------------------------------------------------------

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& s, Studio& studio) : ws_(std::move(s)), studio_(studio) {}

  void run(Request req) {
    client_id_ = parse_target(req.target()).arg("clientId");
    if (client_id_.empty()) client_id_ = new_id();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.read_message_max(64 * 1024);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  // On the io thread. A client that cannot keep up loses preview frames, never JSON messages.
  void send(std::shared_ptr<const std::string> msg, bool binary) {
    if (closed_) return;
    if (binary && queue_.size() > 64) return;
    queue_.emplace_back(std::move(msg), binary);
    if (queue_.size() == 1) write();
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    studio_.join(shared_from_this(), client_id_);
    read();
  }
  void read() { ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this())); }
  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return close();
    buffer_.consume(buffer_.size());  // clients say nothing the server needs
    read();
  }
  void write() {
    ws_.binary(queue_.front().second);
    ws_.async_write(net::buffer(*queue_.front().first),
                    beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }
  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return close();
    queue_.pop_front();
    if (!queue_.empty()) write();
  }
  void close() {
    closed_ = true;
    queue_.clear();
    studio_.leave(this);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::shared_ptr<const std::string>, bool>> queue_;
  Studio& studio_;
  std::string client_id_;
  bool closed_ = false;
};

Response json_response(const Request& req, http::status st, const Json& body) {
  Response res{st, req.version()};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(req.keep_alive());
  res.body() = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  res.prepare_payload();
  return res;
}

Response error_response(const Request& req, const ApiError& e) {
  Json body = e.extra.is_object() ? e.extra : Json::object();
  body["error"] = {{"type", e.type}, {"message", e.what()}};
  if (body.contains("details")) {  // ComfyUI's place for the long form
    body["error"]["details"] = body["details"];
    body.erase("details");
  }
  return json_response(req, e.status, body);
}

// A file's bytes as a 200 answer (no body for HEAD, Content-Length kept).
Response file_response(const Request& req, std::string body, const std::string& type, const char* cache) {
  Response res{http::status::ok, req.version()};
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, cache);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  if (req.method() == http::verb::head) res.body().clear();
  return res;
}

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& s, Studio& studio) : stream_(std::move(s)), studio_(studio) {}
  void run() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::read, shared_from_this())); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(std::chrono::seconds(120));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return close();
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      Request req;
      req.version(11);
      req.keep_alive(false);
      const bool body = ec == http::error::body_limit;
      return send(error_response(
          req, ApiError(body ? http::status::payload_too_large : http::status::request_header_fields_too_large,
                        body ? "body_too_large" : "header_too_large",
                        body ? "the request body is over the 8 MiB limit" : "the request head is over 64 KiB")));
    }
    if (ec) return;
    Request req = parser_->release();
    if (websocket::is_upgrade(req)) {
      if (parse_target(req.target()).path == "/ws" && Studio::same_origin(req)) {
        stream_.expires_never();
        std::make_shared<WsSession>(stream_.release_socket(), studio_)->run(std::move(req));
        return;
      }
      Response res = error_response(req, ApiError(http::status::forbidden, "bad_upgrade",
                                                  "WebSocket connections are taken at /ws from this server's own page"));
      res.keep_alive(false);
      return send(std::move(res));
    }
    send(studio_.handle(req));
  }

  void send(Response&& r) {
    auto res = std::make_shared<Response>(std::move(r));
    const bool close_after = res->need_eof();
    http::async_write(stream_, *res, [self = shared_from_this(), res, close_after](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (close_after) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Studio& studio_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::endpoint ep, Studio& studio) : ioc_(ioc), acceptor_(ioc), studio_(studio) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void run() { accept(); }
  void stop() {
    beast::error_code ec;
    acceptor_.close(ec);
  }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }
  void on_accept(beast::error_code ec, tcp::socket s) {
    if (!acceptor_.is_open()) return;
    if (!ec) std::make_shared<HttpSession>(std::move(s), studio_)->run();
    accept();
  }
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Studio& studio_;
};

// ---- Studio: requests ---------------------------------------------------------------------------------

bool Studio::same_origin(const Request& req) {
  const auto origin = req.find(http::field::origin);
  if (origin == req.end()) return true;  // not a browser's cross-site request
  const auto host = req.find(http::field::host);
  if (host == req.end()) return false;
  std::string o(origin->value());
  const size_t scheme = o.find("://");
  if (scheme != std::string::npos) o = o.substr(scheme + 3);
  return o == std::string(host->value());
}

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
    const auto ct = req.find(http::field::content_type);
    if (!req.body().empty() && (ct == req.end() || std::string(ct->value()).rfind("application/json", 0) != 0))
      throw ApiError(http::status::unsupported_media_type, "bad_content_type",
                     "POST bodies are JSON: send Content-Type: application/json");
    const Json body = parse_body(req);
    if (p == "/check") return json_response(req, http::status::ok, check(body, false, nullptr, nullptr, nullptr, nullptr));
    if (p == "/prompt") return json_response(req, http::status::ok, prompt(body));
    if (p == "/save") return json_response(req, http::status::ok, save(body, req.body()));
    if (p == "/interrupt") return json_response(req, http::status::ok, interrupt(body));
    if (p == "/queue") {
      Json deleted = Json::array();
      {
        std::lock_guard lock(m_);
        std::set<std::string> ids;
        if (body.contains("delete") && body["delete"].is_array())
          for (auto& d : body["delete"])
            if (d.is_string()) ids.insert(d.get<std::string>());
        const bool clear = body.value("clear", false);
        for (auto it = pending_.begin(); it != pending_.end();) {
          if (clear || ids.count((*it)->id)) {
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
    throw ApiError(http::status::not_found, "unknown_op", "no node type \"" + op + "\"" + graph::suggest(op, reg.ops()));
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
  if (p == "/history") return json_response(req, http::status::ok, history_json(t, ""));
  if (p.rfind("/history/", 0) == 0) return json_response(req, http::status::ok, history_json(t, p.substr(9)));
  if (p == "/view") return view(req, t);
  if (p == "/system_stats") {
    std::string cpu;
    std::ifstream in("/proc/cpuinfo");
    for (std::string line; std::getline(in, line);)
      if (line.rfind("model name", 0) == 0) {
        cpu = line.substr(line.find(':') + 2);
        break;
      }
    return json_response(req, http::status::ok,
                         {{"system", {{"os", "linux"}, {"cpu", cpu}, {"cores", std::thread::hardware_concurrency()},
                                      {"noiseflow_version", "1"}, {"root", fs::current_path().string()}}}});
  }
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

// The op of a node the document declares (top-level ids), null for others (nodes inside an include).
Json op_of(const Json& doc, const std::string& node) {
  try {
    const Json& n = doc.at("nodes").at(node);
    if (n.contains("op") && n["op"].is_string()) return n["op"];
  } catch (...) {
  }
  return nullptr;
}

Json Studio::prompt(const Json& body) {
  std::string text, path;
  Json params;
  std::vector<graph::Diagnostic> diags;
  Json checked = check(body, true, &text, &path, &params, &diags);
  const Json doc = Json::parse(text, nullptr, false);  // discarded (not thrown) when the text is no JSON
  if (!diags.empty()) {
    Json node_errors = Json::object();
    for (auto& d : diags) {
      if (d.node.empty()) continue;
      Json& ne = node_errors[d.node];
      if (!ne.contains("errors")) ne["errors"] = Json::array();
      ne["errors"].push_back({{"type", d.code}, {"message", d.message}, {"details", d.field}});
      ne["class_type"] = op_of(doc, d.node);
    }
    std::string details;
    for (auto& d : diags) details += d.str() + "\n";
    throw ApiError(http::status::bad_request, "invalid_prompt",
                   std::to_string(diags.size()) + (diags.size() == 1 ? " problem" : " problems") + " in " + path,
                   {{"node_errors", node_errors}, {"diagnostics", checked["diagnostics"]}, {"details", details}});
  }
  auto e = std::make_shared<RunEntry>();
  e->id = new_id();
  e->path = path;
  e->text = text;
  e->doc = doc;
  e->params = params;
  e->name = checked["graph"]["name"].get<std::string>();
  e->client_id = body.value("client_id", std::string());
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
      if (e->id == id) return {{id, e->history()}};
    throw ApiError(http::status::not_found, "not_found", "no run " + id + " in the history");
  }
  size_t max_items = history_.size();
  if (const std::string m = t.arg("max_items"); !m.empty()) {
    try {
      max_items = std::min(max_items, size_t(std::max(0LL, std::stoll(m))));
    } catch (...) {
      throw ApiError(http::status::bad_request, "bad_request", "max_items must be a number");
    }
  }
  for (size_t i = history_.size() - max_items; i < history_.size(); ++i) out[history_[i]->id] = history_[i]->history();
  return out;
}

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
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  message(e, "execution_start", {{"timestamp", now_ms()}});
  message(e, "executing", {{"node", "run"}});
  std::string status = "success";
  Json error = nullptr;
  int64_t last_tick = 0;
  try {
    graph::Graph g = graph::load_pipeline_text(e.text, e.path, load_options(e.params));
    if (auto p = path_problems(g); !p.empty()) throw graph::GraphError(p);
    auto state = std::make_shared<runtime::RunState>();
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
      message(e, "executed", {{"node", key}, {"output", {{list, Json::array({item})}}}});
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
    runtime::ExecutorOptions eo;
    eo.threads = opt_.threads;
    runtime::Executor ex(g, eo, state);
    tools::RunFolder folder(g, ex.next_tick(), "");
    {
      std::lock_guard lock(m_);
      e.run_dir = folder.dir();
      exec_ = &ex;
      if (cancel_) ex.cancel();
    }
    state->run_dir = folder.dir();
    state->before_checkpoint = [&](int64_t tick) {
      folder.row(tick, *state, elapsed());
      folder.plot();
    };
    auto last_progress = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    const int64_t first = ex.next_tick();
    try {
      ex.run([&](const runtime::TickInfo& t) {
        folder.row(t.tick, *state, t.seconds);
        double loss = NAN;
        int64_t loss_tick = -1;
        const bool has_loss = state->latest("loss", loss, &loss_tick) && loss_tick == t.tick;
        const double rate = double(t.tick + 1 - first) / std::max(t.seconds, 1e-9);
        const double eta = double(t.ticks - t.tick - 1) / std::max(rate, 1e-9);
        Json progress = {{"value", t.tick + 1},   {"max", t.ticks},       {"node", nullptr},
                         {"loss", has_loss ? Json(std::isfinite(loss) ? loss : 0.0) : Json(nullptr)},
                         {"ticks_per_s", rate}, {"eta_s", eta},         {"elapsed_s", t.seconds}};
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
      folder.plot();
      std::lock_guard lock(m_);
      exec_ = nullptr;
      throw;
    }
    {
      std::lock_guard lock(m_);
      exec_ = nullptr;
    }
    folder.plot();
    if (folder.plotted()) state->artifact("image", folder.dir() + "/loss.png", kLossCurve);
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
  {
    std::lock_guard lock(m_);
    e.status = status;
    e.error = error;
  }
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

// The page's folder: --web, else ROOT/web when it holds the page, else the source tree's web/.
fs::path web_folder(const ServeOptions& o) {
  if (!o.web.empty()) return fs::absolute(o.web).lexically_normal();
  if (fs::is_regular_file(fs::path(o.root) / "web/index.html")) return fs::absolute(fs::path(o.root) / "web").lexically_normal();
  return fs::path(NOISEFLOW_WEB_DIR);
}

}  // namespace

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
