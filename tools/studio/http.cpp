// tools/studio/http.cpp — the studio's HTTP and WebSocket sessions and listener (tools/studio/http.hpp).
#include "tools/studio/http.hpp"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>

namespace noiseflow::studio {

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

bool same_origin(const Request& req) {
  const auto origin = req.find(http::field::origin);
  if (origin == req.end()) return true;  // not a browser's cross-site request
  const auto host = req.find(http::field::host);
  if (host == req.end()) return false;
  std::string o(origin->value());
  const size_t scheme = o.find("://");
  if (scheme != std::string::npos) o = o.substr(scheme + 3);
  return o == std::string(host->value());
}

// ---- responses ----------------------------------------------------------------------------------------

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
  Json error = {{"type", e.type}, {"message", e.what()}};
  if (body.contains("details")) {  // ComfyUI's place for the long form
    error["details"] = body["details"];
    body.erase("details");
  }
  if (body.contains("extra_info")) {
    error["extra_info"] = body["extra_info"];
    body.erase("extra_info");
  }
  body["error"] = error;
  return json_response(req, e.status, body);
}

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

// ---- WebSocket sessions -------------------------------------------------------------------------------

void WsSession::run(Request req) {
  client_id_ = parse_target(req.target()).arg("clientId");
  if (client_id_.empty()) client_id_ = new_id();
  ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws_.read_message_max(64 * 1024);
  ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
}

void WsSession::send(std::shared_ptr<const std::string> msg, bool binary) {
  if (closed_) return;
  if (binary && queue_.size() > 64) return;
  queue_.emplace_back(std::move(msg), binary);
  if (queue_.size() == 1) write();
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) return;
  hub_.join(shared_from_this(), client_id_);
  read();
}

void WsSession::read() { ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this())); }

void WsSession::on_read(beast::error_code ec, std::size_t) {
  if (ec) return close();
  buffer_.consume(buffer_.size());  // clients say nothing the server needs
  read();
}

void WsSession::write() {
  ws_.binary(queue_.front().second);
  ws_.async_write(net::buffer(*queue_.front().first), beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
}

void WsSession::on_write(beast::error_code ec, std::size_t) {
  if (ec) return close();
  queue_.pop_front();
  if (!queue_.empty()) write();
}

void WsSession::close() {
  closed_ = true;
  queue_.clear();
  hub_.leave(this);
}

// ---- HTTP sessions ------------------------------------------------------------------------------------

namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& s, Hub& hub) : stream_(std::move(s)), hub_(hub) {}
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
      if (parse_target(req.target()).path == "/ws" && same_origin(req)) {
        stream_.expires_never();
        std::make_shared<WsSession>(stream_.release_socket(), hub_)->run(std::move(req));
        return;
      }
      Response res = error_response(req, ApiError(http::status::forbidden, "bad_upgrade",
                                                  "WebSocket connections are taken at /ws from this server's own page"));
      res.keep_alive(false);
      return send(std::move(res));
    }
    send(hub_.handle(req));
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
  Hub& hub_;
};

}  // namespace

// ---- the listener -------------------------------------------------------------------------------------

Listener::Listener(net::io_context& ioc, tcp::endpoint ep, Hub& hub) : ioc_(ioc), acceptor_(ioc), hub_(hub) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(net::socket_base::max_listen_connections);
}

void Listener::stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

void Listener::accept() {
  acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
}

void Listener::on_accept(beast::error_code ec, tcp::socket s) {
  if (!acceptor_.is_open()) return;
  if (!ec) std::make_shared<HttpSession>(std::move(s), hub_)->run();
  accept();
}

}  // namespace noiseflow::studio
