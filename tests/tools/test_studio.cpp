// tests/tools/test_studio.cpp — `noiseflow serve` over loopback (docs/API.md): node schemas, checking,
// submitting good and bad pipelines, progress and preview messages on the WebSocket, interrupt, the queue,
// a client that goes away mid-run, path escapes and size caps. The server runs as a separate process on a
// free port with a temporary project folder (a copy of pipelines/), as a user starts it.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>  // before Boost.Asio 1.74: its awaitable.hpp uses std::exchange

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <stb_image.h>

#include "tests/test_util.hpp"
#include "tests/tools/run_cli.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace fs = std::filesystem;
using tcp = net::ip::tcp;
using Json = nlohmann::json;
using noiseflow::test::TempDir;

// `noiseflow serve --port 0 --root DIR` as a child process; stopped with SIGTERM by the destructor.
struct Server {
  pid_t pid = -1;
  uint16_t port = 0;
  std::string err_file;

  Server(const TempDir& root, const std::string& err) : err_file(err) {
    const std::string exe = NOISEFLOW_BINARY_DIR "/tools/noiseflow";
    REQUIRE_MESSAGE(fs::exists(exe), "build the noiseflow target first: ", exe);
    int out[2];
    REQUIRE(::pipe(out) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(out[1], 1);
      const int e = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(e, 2);
      ::close(out[0]);
      ::setenv("OMP_WAIT_POLICY", "passive", 1);
      ::execl(exe.c_str(), exe.c_str(), "serve", "--port", "0", "--root", root.str().c_str(), "--threads", "2",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(out[1]);
    // The first line: "noiseflow studio: http://127.0.0.1:PORT/".
    std::string line;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{out[0], POLLIN, 0};
      if (::poll(&p, 1, 500) <= 0) continue;
      char c[256];
      const ssize_t n = ::read(out[0], c, sizeof c);
      if (n <= 0) break;
      line.append(c, size_t(n));
    }
    ::close(out[0]);
    const size_t colon = line.rfind(':');
    REQUIRE_MESSAGE(line.rfind("noiseflow studio: http://127.0.0.1:", 0) == 0,
                    "serve did not start: ", line, noiseflow::test::read_bytes(err_file));
    port = uint16_t(std::stoi(line.substr(colon + 1)));
  }
  ~Server() { stop(); }
  int stop() {
    if (pid <= 0) return 0;
    ::kill(pid, SIGTERM);
    int st = 0;
    ::waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  std::string log() const { return noiseflow::test::read_bytes(err_file); }
};

struct Reply {
  int status = 0;
  std::string body, type;
  Json json() const { return Json::parse(body); }
};

Reply request(uint16_t port, http::verb verb, const std::string& target, const std::string& body = {},
              const std::string& content_type = "application/json", const std::string& origin = {}) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
  if (!body.empty() && !content_type.empty()) req.set(http::field::content_type, content_type);
  if (!origin.empty()) req.set(http::field::origin, origin);
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response_parser<http::string_body> res;
  res.body_limit(boost::none);
  http::read(s, buf, res);
  Reply r;
  r.status = int(res.get().result_int());
  r.body = res.get().body();
  r.type = std::string(res.get()[http::field::content_type]);
  return r;
}
Reply get(uint16_t port, const std::string& target) { return request(port, http::verb::get, target); }
Reply post(uint16_t port, const std::string& target, const Json& body) {
  return request(port, http::verb::post, target, body.dump());
}

// A WebSocket client whose messages a reader thread queues.
class Ws {
 public:
  struct Msg {
    bool binary = false;
    std::string data;
    Json json() const { return Json::parse(data); }
  };

  explicit Ws(uint16_t port, const std::string& origin = {}) : ws_(ioc_) {
    ws_.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
    if (!origin.empty())
      ws_.set_option(websocket::stream_base::decorator(
          [origin](websocket::request_type& r) { r.set(http::field::origin, origin); }));
    ws_.handshake("127.0.0.1:" + std::to_string(port), "/ws?clientId=test-client");
    reader_ = std::thread([this] {
      try {
        for (;;) {
          beast::flat_buffer b;
          ws_.read(b);
          std::lock_guard lock(m_);
          q_.push_back({ws_.got_binary(), beast::buffers_to_string(b.data())});
          cv_.notify_all();
        }
      } catch (...) {
        std::lock_guard lock(m_);
        closed_ = true;
        cv_.notify_all();
      }
    });
  }
  ~Ws() { close(); }
  void close() {
    if (!reader_.joinable()) return;
    beast::error_code ec;
    ws_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    ws_.next_layer().close(ec);
    reader_.join();
  }
  /// The next message, or nullopt after `seconds`.
  std::optional<Msg> next(double seconds = 120) {
    std::unique_lock lock(m_);
    if (!cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return !q_.empty() || closed_; }))
      return std::nullopt;
    if (q_.empty()) return std::nullopt;
    Msg m = std::move(q_.front());
    q_.pop_front();
    return m;
  }
  /// Reads until a JSON message of `type` (about `id` when given) arrives; every message read is kept in
  /// `seen`. Fails the test after `seconds`.
  Json until(const std::string& type, const std::string& id, std::vector<Msg>& seen, double seconds = 180) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      auto m = next(std::chrono::duration<double>(end - std::chrono::steady_clock::now()).count());
      if (!m) break;
      seen.push_back(*m);
      if (m->binary) continue;
      Json j = m->json();
      if (j["type"] == type && (id.empty() || j["data"].value("prompt_id", "") == id)) return j;
    }
    FAIL("no \"", type, "\" message within ", seconds, " s");
    return {};
  }

 private:
  net::io_context ioc_;
  websocket::stream<tcp::socket> ws_;
  std::thread reader_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Msg> q_;
  bool closed_ = false;
};

// A project folder: a copy of pipelines/, the repository's data/ (runs/ starts empty).
void make_project(const TempDir& root) {
  fs::copy(NOISEFLOW_SOURCE_DIR "/pipelines", root.path / "pipelines", fs::copy_options::recursive);
  fs::create_directory_symlink(NOISEFLOW_SOURCE_DIR "/data", root.path / "data");
}

// A request announcing a 9 MiB body (over the 8 MiB cap): refused from its head, before any body is sent.
Reply too_large(uint16_t port) {
  net::io_context ioc;
  tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), port});
  const std::string head = "POST /check HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           "Content-Length: " + std::to_string(9u << 20) + "\r\n\r\n";
  net::write(s, net::buffer(head));
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return {int(res.result_int()), res.body(), std::string(res[http::field::content_type])};
}

Json read_pipeline(const std::string& rel) { return Json::parse(noiseflow::test::read_bytes(NOISEFLOW_SOURCE_DIR "/" + rel)); }

}  // namespace

TEST_CASE("serve: schemas, pipelines, files, checking and saving") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  const uint16_t port = server.port;

  // Every node type, with ComfyUI's fields and the attributes.
  const Json info = get(port, "/object_info").json();
  const auto cli = noiseflow::test::run_cli("nodes --json");
  REQUIRE(cli.status == 0);
  CHECK(info.size() == Json::parse(cli.out).size());
  const Json& conv = info.at("nn.conv2d");
  CHECK(conv["category"] == "nn");
  CHECK(conv["input"]["required"].contains("x"));
  CHECK(conv["output_name"][0] == "y");
  bool kernel = false;
  for (auto& a : conv["attrs"])
    if (a["name"] == "kernel") kernel = a["type"] == "int";
  CHECK(kernel);
  CHECK(info.at("io.checkpoint")["output_node"] == true);
  CHECK(get(port, "/object_info/optim.adam").json().contains("optim.adam"));
  // An unknown node type: 200 {}, as ComfyUI answers (clients probe for extensions' nodes this way).
  const Reply unknown = get(port, "/object_info/optim.adamm");
  CHECK(unknown.status == 200);
  CHECK(unknown.json() == Json::object());
  // Attribute types in the API's names, the same as the schema's own (Schema::to_json).
  for (auto& a : conv["attrs"]) {
    CHECK(std::string("int float bool string int_list float_list any").find(a["type"].get<std::string>()) != std::string::npos);
    for (auto& sa : conv["schema"]["attrs"])
      if (sa["name"] == a["name"]) CHECK(sa["type"] == a["type"]);
  }

  // Pipelines and their text.
  const Json files = get(port, "/pipelines").json()["files"];
  CHECK(std::find(files.begin(), files.end(), "pipelines/train.json") != files.end());
  CHECK(std::find(files.begin(), files.end(), "pipelines/nets/unet_small.json") != files.end());
  const Reply train = get(port, "/file?path=pipelines/train.json");
  REQUIRE(train.status == 200);
  CHECK(train.json() == read_pipeline("pipelines/train.json"));
  CHECK(get(port, "/file?path=pipelines/nope.json").status == 404);

  // The page and its graph-drawing library are served.
  const Reply page = get(port, "/");
  CHECK(page.status == 200);
  CHECK(page.type.find("text/html") == 0);
  CHECK(page.body.find("<html") != std::string::npos);
  CHECK(get(port, "/no-such-file.js").status == 404);

  // check: the expanded graph with shapes, and the diagnostics `noiseflow check` prints.
  const Json ok = post(port, "/check", {{"path", "pipelines/train.json"}}).json();
  REQUIRE(ok["ok"] == true);
  CHECK(ok["graph"]["name"] == "mnist");
  CHECK(ok["graph"]["param_count"] == 1539329);
  bool xt_shape = false;
  for (auto& n : ok["graph"]["nodes"])
    if (n["id"] == "xt") xt_shape = n["outputs"][0]["shape"] == Json::array({64, 1, 28, 28});
  CHECK(xt_shape);
  CHECK(ok["graph"]["nodes"].size() > 50);
  CHECK(post(port, "/check", {{"path", "pipelines/train.json"}, {"params", {{"steps", 3}}}}).json()["graph"]["ticks"] == 3);

  Json bad = read_pipeline("pipelines/train.json");
  bad["nodes"]["opt"]["attrs"]["lr"] = -1;
  bad["nodes"]["loss"]["inputs"]["pred"] = "nett";
  const Json diag = post(port, "/check", {{"path", "pipelines/bad.json"}, {"pipeline", bad}}).json();
  CHECK(diag["ok"] == false);
  CHECK(diag["graph"].is_null());
  REQUIRE(diag["diagnostics"].size() >= 2);
  // The same lines as the command line prints for the same file.
  {
    const Json s = post(port, "/save", {{"path", "pipelines/bad.json"}, {"pipeline", bad}}).json();
    CHECK(s["saved"] == "pipelines/bad.json");
    CHECK(s["ok"] == false);
    CHECK(Json::parse(noiseflow::test::read_bytes(root / "pipelines/bad.json")) == bad);
    const auto c = noiseflow::test::run_shell("cd '" + root.str() + "' && '" NOISEFLOW_BINARY_DIR
                                              "/tools/noiseflow' check pipelines/bad.json");
    CHECK(c.status != 0);
    for (auto& d : diag["diagnostics"])
      CHECK_MESSAGE(c.err.find(d["text"].get<std::string>()) != std::string::npos, d["text"], "\nnot in\n", c.err);
    bool on_opt = false, on_loss = false;
    for (auto& d : diag["diagnostics"]) on_opt |= d["node"] == "opt", on_loss |= d["node"] == "loss";
    CHECK(on_opt);
    CHECK(on_loss);
  }

  // Submitting it: 400, the problems by node (ComfyUI's node_errors) and as diagnostics.
  const Reply refused = post(port, "/prompt", {{"path", "pipelines/bad.json"}, {"pipeline", bad}});
  CHECK(refused.status == 400);
  const Json rj = refused.json();
  CHECK(rj["error"]["type"] == "invalid_prompt");
  CHECK(rj["error"]["details"].get<std::string>().find("node \"opt\"") != std::string::npos);
  CHECK(rj["node_errors"]["opt"]["class_type"] == "optim.adam");
  CHECK(rj["node_errors"]["opt"]["errors"][0]["details"] == "attr \"lr\"");
  CHECK(rj["node_errors"]["opt"]["errors"][0]["extra_info"]["input_name"] == "lr");
  CHECK(rj["node_errors"]["opt"]["dependent_outputs"] == Json::array());
  CHECK(rj["diagnostics"] == diag["diagnostics"]);
  CHECK(get(port, "/queue").json()["queue_pending"].empty());

  // Saving keeps the document's key order: an unedited train.json saved comes back in the same order.
  const std::string train_text = noiseflow::test::read_bytes(NOISEFLOW_SOURCE_DIR "/pipelines/train.json");
  REQUIRE(request(port, http::verb::post, "/save",
                  "{\"path\": \"pipelines/copy/train.json\", \"pipeline\": " + train_text + "}").status == 200);
  const auto a = nlohmann::ordered_json::parse(train_text),
             b = nlohmann::ordered_json::parse(noiseflow::test::read_bytes(root / "pipelines/copy/train.json"));
  CHECK(a.dump() == b.dump());

  // Saving writes only .json files under pipelines/.
  CHECK(post(port, "/save", {{"path", "runs/x.json"}, {"pipeline", bad}}).status == 403);
  CHECK(post(port, "/save", {{"path", "pipelines/x.txt"}, {"pipeline", bad}}).status == 403);
  CHECK(post(port, "/save", {{"path", "pipelines/x.json"}, {"pipeline", 3}}).status == 400);
  CHECK(!fs::exists(root.path / "pipelines/x.json"));
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: paths stay inside the project folder, bad requests get clear errors") {
  TempDir root, logs;
  make_project(root);
  root.write("secret.json", "{\"secret\": 1}");
  Server server(root, logs / "serve.err");
  const uint16_t port = server.port;
  auto refused = [&](const Reply& r) {
    CHECK(r.status == 403);
    if (r.status == 403) CHECK(r.json()["error"]["type"] == "path_refused");
  };
  refused(get(port, "/file?path=../etc/passwd.json"));
  refused(get(port, "/file?path=/etc/passwd"));
  refused(get(port, "/file?path=pipelines/../../x.json"));
  refused(get(port, "/file?path=pipelines/%2e%2e/%2e%2e/x.json"));
  refused(get(port, "/view?filename=passwd&subfolder=../../etc"));
  refused(get(port, "/view?filename=/etc/passwd"));
  refused(get(port, "/view?filename=secret.json"));  // inside, but neither runs/ nor pipelines/
  refused(get(port, "/../../etc/passwd"));
  refused(post(port, "/save", {{"path", "pipelines/../escape.json"}, {"pipeline", Json::object()}}));
  refused(post(port, "/save", {{"path", "/tmp/escape.json"}, {"pipeline", Json::object()}}));
  refused(post(port, "/check", {{"path", "../x.json"}}));
  CHECK(!fs::exists(root.path / "escape.json"));

  // A pipeline naming a file outside: an include, a checkpoint path, a run name.
  Json p = read_pipeline("pipelines/examples/toy2d_train.json");
  p["include"]["mlp"] = "../../../etc/hosts";
  Json c = post(port, "/check", {{"path", "pipelines/examples/t.json"}, {"pipeline", p}}).json();
  CHECK(c["ok"] == false);
  CHECK(c["diagnostics"][0]["code"] == "path_refused");
  CHECK(c["diagnostics"][0]["field"] == "include \"mlp\"");
  p = read_pipeline("pipelines/examples/toy2d_train.json");
  Reply r = post(port, "/prompt", {{"path", "pipelines/examples/t.json"}, {"pipeline", p},
                                   {"params", {{"checkpoint", "/tmp/noiseflow-escape.safetensors"}}}});
  CHECK(r.status == 400);
  CHECK(r.json()["node_errors"]["ckpt"]["errors"][0]["type"] == "path_refused");
  r = post(port, "/prompt", {{"path", "pipelines/examples/t.json"}, {"pipeline", p},
                             {"params", {{"checkpoint", "runs/../../escape.safetensors"}}}});
  CHECK(r.status == 400);
  p["name"] = "../../elsewhere";
  r = post(port, "/prompt", {{"path", "pipelines/examples/t.json"}, {"pipeline", p}});
  CHECK(r.status == 400);
  CHECK(r.json()["diagnostics"][0]["field"] == "name");
  CHECK(get(port, "/queue").json()["queue_pending"].empty());

  // Malformed JSON, wrong content types, other sites' pages, sizes over the caps.
  r = request(port, http::verb::post, "/prompt", "{\"path\": \"pipelines/train.json\",");
  CHECK(r.status == 400);
  CHECK(r.json()["error"]["type"] == "bad_json");
  CHECK(r.json()["error"]["message"].get<std::string>().find("line 1") != std::string::npos);
  // A browser's request (it sends an Origin) says application/json; a program's (no Origin: Node's fetch
  // sends a string body as text/plain) may send JSON under any type but a form's; another site's page is
  // refused whatever it sends.
  const std::string self = "http://127.0.0.1:" + std::to_string(port);
  CHECK(request(port, http::verb::post, "/interrupt", "{}", "text/plain", self).status == 415);
  CHECK(request(port, http::verb::post, "/interrupt", "{}", "application/json", self).status == 200);
  CHECK(request(port, http::verb::post, "/interrupt", "{}", "text/plain;charset=UTF-8").status == 200);
  CHECK(request(port, http::verb::post, "/interrupt", "{}", "").status == 200);  // no Content-Type
  CHECK(request(port, http::verb::post, "/interrupt", "a=1", "application/x-www-form-urlencoded").status == 415);
  CHECK(request(port, http::verb::post, "/interrupt", "{}", "text/plain", "http://evil.example").status == 403);
  CHECK(request(port, http::verb::post, "/interrupt", "{}", "application/json", "http://evil.example").status == 403);
  CHECK(post(port, "/prompt", {{"pipeline", p}}).status == 400);  // no path (optional), but the name escapes
  CHECK(too_large(port).status == 413);
  CHECK(request(port, http::verb::delete_, "/queue").status == 405);
  CHECK(get(port, "/history/no-such-run").status == 200);  // {}, as ComfyUI answers
  CHECK(get(port, "/history/no-such-run").json() == Json::object());
  CHECK_THROWS(Ws(port, "http://evil.example"));
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: a training run reports progress, loss and outputs, the history keeps it") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  const uint16_t port = server.port;
  Ws ws(port);
  std::vector<Ws::Msg> seen;
  const Json status = ws.until("status", "", seen, 30);
  CHECK(status["data"]["sid"] == "test-client");

  Reply r = post(port, "/prompt", {{"path", "pipelines/examples/toy2d_train.json"},
                                   {"params", {{"steps", 300}, {"checkpoint_every", 100}}},
                                   {"client_id", "test-client"}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string id = r.json()["prompt_id"];
  CHECK(!id.empty());
  ws.until("execution_start", id, seen);
  const Json done = ws.until("execution_success", id, seen, 300);
  ws.until("executing", id, seen, 30);  // node null: the run is over

  // Progress: ticks rising to 300/300 with a loss, the last one always sent; checkpoints as outputs.
  int64_t last = 0, progress = 0;
  double first_loss = -1, last_loss = -1;
  int checkpoints = 0;
  for (auto& m : seen) {
    if (m.binary) continue;
    const Json j = m.json();
    if (j["type"] == "progress") {
      ++progress;
      CHECK(j["data"]["value"].get<int64_t>() > last);
      last = j["data"]["value"];
      CHECK(j["data"]["max"] == 300);
      CHECK(j["data"]["ticks_per_s"].get<double>() > 0);
      REQUIRE(j["data"]["loss"].is_number());
      if (first_loss < 0) first_loss = j["data"]["loss"];
      last_loss = j["data"]["loss"];
    }
    if (j["type"] == "executed" && j["data"]["node"] == "ckpt") ++checkpoints;
  }
  CHECK(last == 300);
  CHECK(progress >= 2);
  CHECK(checkpoints == 0);  // files are outputs in the history, not executed (ComfyUI's clients take those as images)
  CHECK(fs::exists(root.path / "runs/toy2d/checkpoint.safetensors"));
  CHECK(fs::exists(root.path / "runs/toy2d/log.csv"));

  const Json h = get(port, "/history/" + id).json()[id];
  CHECK(h["status"]["status_str"] == "success");
  CHECK(h["status"]["completed"] == true);
  CHECK(h["progress"]["value"] == 300);
  REQUIRE(h["loss"].size() == 300);
  // The loss falls: the mean of the last 50 ticks is below 0.8x the first 50's.
  double a = 0, b = 0;
  for (int i = 0; i < 50; ++i) a += h["loss"][i][1].get<double>(), b += h["loss"][250 + i][1].get<double>();
  CHECK(b < 0.8 * a);
  CHECK(h["outputs"]["ckpt"]["files"][0]["filename"] == "checkpoint.safetensors");
  CHECK(h["outputs"]["ckpt"]["files"][0]["subfolder"] == "runs/toy2d");
  CHECK(h["noiseflow"]["params"]["steps"] == 300);
  CHECK(h["noiseflow"]["path"] == "pipelines/examples/toy2d_train.json");
  REQUIRE(h["prompt"].is_array());  // ComfyUI's [number, prompt_id, prompt, extra_data, outputs_to_execute]
  CHECK(h["prompt"][0] == h["number"]);
  CHECK(h["prompt"][1] == id);
  CHECK(h["prompt"][2]["nodes"].contains("ckpt"));
  CHECK(h["prompt"][3]["client_id"] == "test-client");
  CHECK(std::find(h["prompt"][4].begin(), h["prompt"][4].end(), "ckpt") != h["prompt"][4].end());
  CHECK(get(port, "/history").json().contains(id));
  CHECK(get(port, "/history?max_items=0").json().empty());
  // /view serves what the run wrote.
  const Reply loss_png = get(port, "/view?filename=loss.png&subfolder=runs/toy2d&type=output");
  CHECK(loss_png.status == 200);
  CHECK(loss_png.type == "image/png");
  CHECK(loss_png.body.substr(1, 3) == "PNG");
  (void)done;
  (void)first_loss;
  (void)last_loss;
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: x0 previews of every sampler step arrive as binary frames, the last shows the data's mean") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  Ws ws(server.port);
  std::vector<Ws::Msg> seen;
  // The exact denoiser of N(mu, sigma^2) data: x0_hat -> mu as the noise goes, whatever the sample.
  const double mu = 0.5;
  Reply r = post(server.port, "/prompt", {{"path", "pipelines/examples/gaussian_sampler.json"},
                                          {"params", {{"n", 16}, {"mu", mu}, {"sigma", 0.01}, {"sampler", "ddim"},
                                                      {"steps", 40}, {"spacing", "trailing"}}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string id = r.json()["prompt_id"];
  ws.until("execution_success", id, seen, 300);
  int previews = 0;
  std::string last_png;
  int64_t last_tick = -1;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i].binary || seen[i].json()["type"] != "preview") continue;
    const Json d = seen[i].json()["data"];
    CHECK(d["kind"] == "x0");
    CHECK(d["node"] == "step");
    REQUIRE(i + 1 < seen.size());
    REQUIRE(seen[i + 1].binary);  // the frame follows its announcement
    const std::string& f = seen[i + 1].data;
    REQUIRE(f.size() > 16);
    CHECK(f.substr(0, 8) == std::string("\0\0\0\1\0\0\0\2", 8));
    last_png = f.substr(8);
    last_tick = d["tick"];
    ++previews;
  }
  CHECK(previews >= 1);
  CHECK(last_tick == 40);  // the last evaluation is always shown (ticks counted as progress counts them)
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(last_png.data()),
                                            int(last_png.size()), &w, &h, &c, 1);
  REQUIRE(px != nullptr);
  // 16 samples of 4x4 in a 4x4 grid: every cell's pixels at (mu + 1) / 2 * 255.
  const int expect = int(std::lround((mu + 1) / 2 * 255));
  const int scale = w / (4 * (4 + 2) + 2);
  REQUIRE(scale >= 1);
  for (int k = 0; k < 16; ++k) {
    const int x = (2 + (k % 4) * 6) * scale + scale * 2, y = (2 + (k / 4) * 6) * scale + scale * 2;
    CHECK(std::abs(int(px[y * w + x]) - expect) <= 3);
  }
  stbi_image_free(px);
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: interrupt stops the running run, the queue goes on, a client that leaves changes nothing") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  const uint16_t port = server.port;
  std::vector<Ws::Msg> seen;
  std::string long_id, queued_id, dropped_id;
  {
    Ws ws(port);
    Reply r = post(port, "/prompt", {{"path", "pipelines/examples/toy2d_train.json"},
                                     {"params", {{"steps", 1000000}, {"checkpoint", "runs/long/ck.safetensors"}}}});
    REQUIRE(r.status == 200);
    long_id = r.json()["prompt_id"];
    r = post(port, "/prompt", {{"path", "pipelines/examples/toy2d_train.json"}, {"params", {{"steps", 50}}}});
    REQUIRE(r.status == 200);
    queued_id = r.json()["prompt_id"];
    r = post(port, "/prompt", {{"path", "pipelines/examples/toy2d_train.json"}, {"params", {{"steps", 60}}}});
    dropped_id = r.json()["prompt_id"];
    ws.until("progress", long_id, seen, 120);
    const Json q = get(port, "/queue").json();
    REQUIRE(q["queue_running"].size() == 1);
    CHECK(q["queue_running"][0][1] == long_id);
    CHECK(q["queue_pending"].size() == 2);
    CHECK(post(port, "/queue", {{"delete", {dropped_id}}}).json()["deleted"][0] == dropped_id);
    CHECK(post(port, "/interrupt", {{"prompt_id", "someone-else"}}).json()["interrupted"].is_null());
    CHECK(post(port, "/interrupt", Json::object()).json()["interrupted"] == long_id);
    const Json stopped = ws.until("execution_interrupted", long_id, seen, 60);
    CHECK(stopped["data"]["tick"].get<int64_t>() < 1000000);
    // The queued run starts; this client goes away in the middle of it.
    ws.until("execution_start", queued_id, seen, 60);
  }
  // Its results are in the history all the same.
  Json h;
  for (int i = 0; i < 600; ++i) {
    h = get(port, "/history/" + queued_id).json()[queued_id];
    if (h["status"]["status_str"] != "running" && h["status"]["status_str"] != "pending") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  CHECK(h["status"]["status_str"] == "success");
  CHECK(h["progress"]["value"] == 50);
  CHECK(get(port, "/history/" + long_id).json()[long_id]["status"]["status_str"] == "interrupted");
  CHECK(get(port, "/history/" + dropped_id).json() == Json::object());
  CHECK(post(port, "/interrupt", Json::object()).json()["interrupted"].is_null());
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: a folder that is not there, a port that is taken, a host that is no address: clear errors") {
  TempDir root, logs;
  auto r = noiseflow::test::run_cli("serve --port 0 --root /nonexistent/noiseflow-project");
  CHECK(r.status != 0);
  CHECK(r.err.find("--root /nonexistent/noiseflow-project is not a folder") != std::string::npos);
  r = noiseflow::test::run_cli("serve --port 0 --host localhost.invalid --root " + root.str());
  CHECK(r.status != 0);
  CHECK(r.err.find("--host localhost.invalid is not an IP address") != std::string::npos);
  Server first(root, logs / "serve.err");
  r = noiseflow::test::run_cli("serve --port " + std::to_string(first.port) + " --root " + root.str());
  CHECK(r.status != 0);
  CHECK(r.err.find("cannot listen on 127.0.0.1:" + std::to_string(first.port)) != std::string::npos);
  CHECK(first.stop() == 0);
}

TEST_CASE("serve: a run that fails at plan time ends in execution_error naming the node, and the queue goes on") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  Ws ws(server.port);
  std::vector<Ws::Msg> seen;
  // sample.json is valid, but there is no trained checkpoint in this project folder.
  Reply r = post(server.port, "/prompt", {{"path", "pipelines/sample.json"}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string id = r.json()["prompt_id"];
  const Json err = ws.until("execution_error", id, seen, 120);
  CHECK(err["data"]["node_id"] == "load");
  CHECK(err["data"]["exception_message"].get<std::string>().find("train a model first") != std::string::npos);
  const Json h = get(server.port, "/history/" + id).json()[id];
  CHECK(h["status"]["status_str"] == "error");
  CHECK(h["error"]["node_id"] == "load");
  CHECK(h["error"]["diagnostics"][0]["node"] == "load");
  // The next run is not held up by the failed one.
  r = post(server.port, "/prompt", {{"path", "pipelines/examples/gaussian_sampler.json"}, {"params", {{"n", 4}}}});
  REQUIRE(r.status == 200);
  ws.until("execution_success", r.json()["prompt_id"], seen, 120);
  CHECK(server.stop() == 0);
}

// ComfyUI's API format: the DDIM sampler of the exact denoiser of N(0.5, 0.1^2) data, writing a grid at its end
// (tests/comfy/clients.mjs runs the same with the stock clients).
Json sampler_prompt(int steps) {
  return Json::parse(R"({
    "1": {"class_type": "diffusion.schedule", "inputs": {"T": 1000}},
    "2": {"class_type": "random.normal", "inputs": {"shape": [16, 1, 8, 8]}},
    "3": {"class_type": "sampler.timesteps",
          "inputs": {"like": ["2", 0], "schedule": ["1", 0], "sampler": "ddim", "steps": )" + std::to_string(steps) + R"(, "spacing": "trailing"}},
    "4": {"class_type": "state", "inputs": {"init": ["2", 0], "next": ["6", 0]}},
    "5": {"class_type": "state", "inputs": {"init": ["3", 2], "next": ["6", 1]}},
    "6": {"class_type": "sampler.ddim",
          "inputs": {"x": ["4", 0], "pred": ["7", 0], "t": ["3", 0], "points": ["3", 1], "history": ["5", 0]}},
    "7": {"class_type": "diffusion.gaussian_denoiser",
          "inputs": {"x": ["4", 0], "t": ["3", 0], "schedule": ["1", 0], "mu": 0.5, "sigma": 0.1}},
    "8": {"class_type": "io.write_images", "inputs": {"images": ["6", 0], "path": "runs/comfy/samples.png", "at_end": true}},
    "9": {"class_type": "noiseflow.run", "inputs": {"ticks": "auto", "seed": 1, "name": "comfy"}}
  })");
}

TEST_CASE("serve: ComfyUI's protocol — an API-format prompt runs, its messages in ComfyUI's order, its history in ComfyUI's shape") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  const uint16_t port = server.port;
  Ws ws(port);
  std::vector<Ws::Msg> seen;
  ws.until("status", "", seen, 30);
  CHECK(get(port, "/prompt").json() == Json{{"exec_info", {{"queue_remaining", 0}}}});
  const Json stats = get(port, "/system_stats").json();
  REQUIRE(stats["devices"].size() == 1);
  CHECK(stats["devices"][0]["type"] == "cpu");
  CHECK(stats["devices"][0]["index"] == 0);
  CHECK(stats["devices"][0]["vram_total"].get<int64_t>() > 0);
  CHECK(stats["devices"][0]["torch_vram_free"].get<int64_t>() > 0);
  CHECK(stats["system"]["os"].is_string());

  // No Content-Type, no path: as a program sends it.
  Json body = {{"prompt", sampler_prompt(30)}, {"client_id", "test-client"}, {"extra_data", {{"extra_pnginfo", {{"workflow", Json::object()}}}}}};
  Reply r = request(port, http::verb::post, "/prompt", body.dump(), "");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::string id = r.json()["prompt_id"];
  ws.until("execution_success", id, seen, 120);
  ws.until("executing", id, seen, 30);  // node null
  std::vector<std::string> order;
  Json executed;
  int64_t last_progress = 0;
  for (auto& m : seen) {
    if (m.binary) continue;
    const Json j = m.json();
    if (j["data"].value("prompt_id", "") != id) continue;
    const std::string type = j["type"];
    if (type == "preview") continue;
    if (order.empty() || order.back() != type) order.push_back(type);
    if (type == "executed") executed = j["data"];
    if (type == "progress") last_progress = j["data"]["value"];
    if (type == "executing" && !j["data"]["node"].is_null()) CHECK(j["data"]["node"].get<std::string>().size() == 1);
  }
  CHECK(order == std::vector<std::string>{"execution_start", "execution_cached", "executing", "progress", "executed",
                                          "execution_success", "executing"});
  CHECK(last_progress == 30);
  CHECK(executed["node"] == "8");
  REQUIRE(executed["output"]["images"].size() == 1);
  const Json image = executed["output"]["images"][0];
  CHECK(image == Json{{"filename", "samples.png"}, {"subfolder", "runs/comfy"}, {"type", "output"}});

  const Json h = get(port, "/history/" + id).json()[id];
  CHECK(h["status"]["status_str"] == "success");
  CHECK(h["status"]["completed"] == true);
  REQUIRE(h["prompt"].is_array());
  CHECK(h["prompt"][1] == id);
  CHECK(h["prompt"][2] == sampler_prompt(30));  // as submitted
  CHECK(h["prompt"][3]["client_id"] == "test-client");
  CHECK(h["prompt"][3].contains("extra_pnginfo"));
  CHECK(h["prompt"][4] == Json::array({"8"}));
  CHECK(h["outputs"]["8"]["images"][0] == image);
  CHECK(h["noiseflow"]["name"] == "comfy");
  CHECK(h["noiseflow"]["pipeline"]["nodes"]["6"]["inputs"]["pred"] == "7.pred");
  CHECK(h["noiseflow"]["pipeline"]["nodes"]["8"]["at_end"] == true);
  // The image, as the clients' URL helpers ask for it (stable-canvas encodes the subfolder, saintno does not).
  for (const std::string q : {"filename=samples.png&type=output&subfolder=runs/comfy",
                              "filename=samples.png&subfolder=runs%2Fcomfy&type=output"}) {
    const Reply png = get(port, "/view?" + q);
    CHECK(png.status == 200);
    CHECK(png.type == "image/png");
    CHECK(png.body.substr(1, 3) == "PNG");
  }

  // POST /history: delete one entry, clear the rest; the queue's runs stay.
  r = post(port, "/prompt", {{"prompt", sampler_prompt(5)}});
  REQUIRE(r.status == 200);
  const std::string second = r.json()["prompt_id"];
  ws.until("execution_success", second, seen, 120);
  CHECK(post(port, "/history", {{"delete", {id}}}).json() == Json::object());
  CHECK(get(port, "/history/" + id).json() == Json::object());
  CHECK(get(port, "/history").json().contains(second));
  CHECK(request(port, http::verb::post, "/history", "{\"clear\": true}", "text/plain").status == 200);
  CHECK(get(port, "/history").json() == Json::object());
  CHECK(server.stop() == 0);
}

TEST_CASE("serve: bad API-format prompts are 400 with ComfyUI's node_errors, never a crash") {
  TempDir root, logs;
  make_project(root);
  Server server(root, logs / "serve.err");
  const uint16_t port = server.port;
  auto refused = [&](const Json& prompt, const std::string& node, const std::string& type) {
    const Reply r = post(port, "/prompt", {{"prompt", prompt}, {"client_id", "x"}});
    CHECK_MESSAGE(r.status == 400, r.body);
    if (r.status != 400) return Json();
    const Json j = r.json();
    CHECK(j["error"]["type"].is_string());
    CHECK(j["error"]["message"].is_string());
    CHECK(j["error"].contains("details"));
    CHECK(j["error"].contains("extra_info"));
    REQUIRE_MESSAGE(j["node_errors"].contains(node), j.dump());
    const Json& ne = j["node_errors"][node];
    CHECK(ne["dependent_outputs"] == Json::array());
    REQUIRE(!ne["errors"].empty());
    CHECK_MESSAGE(ne["errors"][0]["type"] == type, ne.dump());
    for (auto& e : ne["errors"]) {
      CHECK(e.contains("message"));
      CHECK(e.contains("details"));
      CHECK(e.contains("extra_info"));
    }
    return j;
  };
  Json p = sampler_prompt(5);
  p["7"]["class_type"] = "diffusion.gausian_denoiser";
  Json j = refused(p, "7", "missing_node_type");
  CHECK(j["error"]["type"] == "missing_node_type");
  CHECK(j["node_errors"]["7"]["class_type"] == "diffusion.gausian_denoiser");
  CHECK(j["node_errors"]["7"]["errors"][0]["message"].get<std::string>().find("diffusion.gaussian_denoiser") != std::string::npos);
  p = sampler_prompt(5);
  p["6"]["inputs"]["pred"] = {"77", 0};
  refused(p, "6", "bad_linked_input");
  p = sampler_prompt(5);
  p["6"]["inputs"]["t"] = {"3", 9};
  j = refused(p, "6", "bad_linked_input");
  CHECK(j["node_errors"]["6"]["errors"][0]["extra_info"]["input_name"] == "t");
  p = sampler_prompt(5);
  p["6"]["inputs"]["t"] = "3";
  refused(p, "6", "bad_linked_input");
  p = sampler_prompt(5);
  p["7"]["inputs"]["sigmaa"] = 1;
  j = refused(p, "7", "unknown_input");
  CHECK(j["node_errors"]["7"]["errors"][0]["message"].get<std::string>().find("sigma") != std::string::npos);
  p = sampler_prompt(5);
  p["9"]["inputs"]["ticks"] = -3;  // the loader's diagnostic, on the run node
  j = refused(p, "9", "wrong_type");
  CHECK(j["node_errors"]["9"]["class_type"] == "noiseflow.run");
  p = sampler_prompt(5);
  p["7"]["inputs"]["sigma"] = "wide";  // the loader's diagnostic, on the node
  j = refused(p, "7", "wrong_type");
  CHECK(j["node_errors"]["7"]["class_type"] == "diffusion.gaussian_denoiser");
  p = sampler_prompt(5);
  p["6"]["inputs"].erase("pred");
  refused(p, "6", "missing_input");
  p = sampler_prompt(5);
  p["5"].erase("class_type");
  refused(p, "5", "invalid_prompt");
  p = sampler_prompt(5);
  p["8"]["inputs"]["path"] = "/tmp/escape.png";
  refused(p, "8", "path_refused");
  // Not a prompt at all: 400, no crash.
  for (const std::string bad : {R"({"prompt": [1, 2]})", R"({"prompt": 3})", R"({"prompt": {"1": 5}})",
                                R"({"prompt": {"1": {"class_type": 5}}})", R"({"prompt": {}})", "[]"})
    CHECK_MESSAGE(request(port, http::verb::post, "/prompt", bad).status == 400, bad);
  CHECK(get(port, "/queue").json()["queue_pending"].empty());
  CHECK(server.stop() == 0);
}
