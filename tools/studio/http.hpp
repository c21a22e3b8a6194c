// tools/studio/http.hpp — the studio's HTTP and WebSocket server (Boost.Beast): the listener, HTTP
// sessions handing each request to a Hub, WebSocket sessions the Hub sends messages to, and the request
// and response helpers the routes use. Nothing here knows the API; tools/studio/routes.cpp does.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace noiseflow::studio {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Json = nlohmann::json;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

inline constexpr uint64_t kBodyLimit = 8u << 20;    ///< request bodies (pipelines)
inline constexpr uint32_t kHeaderLimit = 64u << 10;  ///< request heads

/// An API failure: HTTP status, error type, message, and more fields for the body.
struct ApiError : std::runtime_error {
  http::status status;
  std::string type;
  Json extra;
  ApiError(http::status s, std::string t, const std::string& m, Json e = Json::object())
      : std::runtime_error(m), status(s), type(std::move(t)), extra(std::move(e)) {}
};

/// "%41+b" -> "A b".
std::string url_decode(std::string_view s);

/// A request target: its decoded path and query arguments.
struct Target {
  std::string path;
  std::map<std::string, std::string> query;
  /// The query argument `k`, empty when absent.
  std::string arg(const std::string& k) const {
    auto it = query.find(k);
    return it == query.end() ? std::string() : it->second;
  }
};

/// Splits and decodes "/path?k=v&...".
Target parse_target(beast::string_view target);

/// A JSON answer (no-store).
Response json_response(const Request& req, http::status st, const Json& body);
/// An ApiError as `{"error": {"type", "message", ...}, ...extra}` (extra's "details" goes into "error").
Response error_response(const Request& req, const ApiError& e);
/// A file's bytes as a 200 answer (no body for HEAD, Content-Length kept).
Response file_response(const Request& req, std::string body, const std::string& type, const char* cache);

class WsSession;

/// What the sessions serve: the studio (tools/studio/studio_impl.hpp). Called on the io thread.
class Hub {
 public:
  virtual ~Hub() = default;
  /// The answer to one HTTP request.
  virtual Response handle(const Request& req) = 0;
  /// A WebSocket client connected (with the clientId of its URL, or a new id).
  virtual void join(const std::shared_ptr<WsSession>& s, const std::string& client_id) = 0;
  /// A WebSocket client went away.
  virtual void leave(WsSession* s) = 0;
};

/// True when a request's Origin (if any) is this server: a page elsewhere may not drive it.
bool same_origin(const Request& req);

/// One WebSocket client: messages queued and written in order on the io thread.
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& s, Hub& hub) : ws_(std::move(s)), hub_(hub) {}
  /// Accepts the upgrade `req`.
  void run(Request req);
  /// On the io thread. A client that cannot keep up loses binary (preview) frames, never JSON messages.
  void send(std::shared_ptr<const std::string> msg, bool binary);

 private:
  void on_accept(beast::error_code ec);
  void read();
  void on_read(beast::error_code ec, std::size_t);
  void write();
  void on_write(beast::error_code ec, std::size_t);
  void close();

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<std::pair<std::shared_ptr<const std::string>, bool>> queue_;
  Hub& hub_;
  std::string client_id_;
  bool closed_ = false;
};

/// Accepts connections on one endpoint; each becomes an HTTP session (upgraded to WebSocket at /ws).
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  /// Binds and listens; throws boost::system::system_error when it cannot.
  Listener(net::io_context& ioc, tcp::endpoint ep, Hub& hub);
  /// The port bound (the one picked for port 0).
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  /// Starts accepting.
  void run() { accept(); }
  /// Stops accepting.
  void stop();

 private:
  void accept();
  void on_accept(beast::error_code ec, tcp::socket s);
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Hub& hub_;
};

/// A new random id, formatted as a UUID.
std::string new_id();

}  // namespace noiseflow::studio
