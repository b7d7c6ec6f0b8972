// The inspected HTTPS tunnel on Boost.Asio (see tls_tunnel.hpp). One
// coroutine per tunnel, on its job's strand: requests are relayed one at a
// time (HTTP/1.1 without pipelining), the origin's connection kept alive
// between them and opened only when a request is not served from the store.
// As in service.cpp: GCC 12 warns about Boost's inlined code, not ours
// (before the header, which brings Asio).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wtsan"
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include "egress/tls_tunnel.hpp"

#include <arpa/inet.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <optional>

#include "common/digest.hpp"

namespace lockstep::egress::detail {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SslStream = ssl::stream<tcp::socket&>;

namespace {

constexpr size_t kMaxHead = 65536;
// Bytes of a body read at a time (two such buffers per relay: one being
// hashed and written while the next is read).
constexpr size_t kBodyBuffer = 256 * 1024;

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool has_token(const Headers& h, std::string_view name, std::string_view token) {
  auto v = header(h, name);
  if (!v) return false;
  std::string lower = *v;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find(token) != std::string::npos;
}

// Where a message body ends (RFC 9112, section 6.3).
struct Framing {
  enum Kind { kNone, kLength, kChunked, kClose } kind = kNone;
  uint64_t left = 0;
  ChunkedDecoder chunks;
};

// nullopt: a Content-Length that is not a number.
std::optional<Framing> framing_of(const Headers& h, bool request) {
  Framing f;
  if (has_token(h, "transfer-encoding", "chunked")) {
    f.kind = Framing::kChunked;
  } else if (auto cl = header(h, "content-length")) {
    if (cl->empty() || cl->size() > 19 ||
        !std::all_of(cl->begin(), cl->end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    f.kind = Framing::kLength;
    f.left = std::stoull(*cl);
  } else {
    f.kind = request ? Framing::kNone : Framing::kClose;
  }
  if (f.kind == Framing::kLength && f.left == 0) f.kind = Framing::kNone;
  return f;
}

std::shared_ptr<ssl::context> wrap(SSL_CTX* raw) {
  SSL_CTX_up_ref(raw);  // asio's context frees its handle
  return std::make_shared<ssl::context>(raw);
}

class Tunnel {
 public:
  Tunnel(tcp::socket& client, tcp::socket& upstream, Target t, std::vector<tcp::endpoint> targets,
         TunnelJob job)
      : client_sock_(client),
        up_sock_(upstream),
        t_(std::move(t)),
        targets_(std::move(targets)),
        job_(std::move(job)) {
    authority_ = t_.url();  // host:port
    t_.scheme = "https";
  }

  awaitable<void> run(std::string early) {
    error_code ec;
    auto server = job_.inspection->server_context(t_.host);
    if (!server) {
      co_await plain_error(server.error().message());
      co_return;
    }
    std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
    co_await asio::async_write(client_sock_, asio::buffer(ok),
                               asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    // A TLS record starts with 0x16 (handshake); anything else is not
    // HTTPS, which an inspected tunnel does not carry.
    if (early.empty()) {
      char b[4096];
      size_t n = co_await client_sock_.async_read_some(asio::buffer(b),
                                                       asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      early.assign(b, n);
    }
    if (early[0] != 0x16) {
      tunnel_error("the job sent something other than TLS through an inspected tunnel");
      co_return;
    }
    server_ctx_ = wrap(*server);
    client_.emplace(client_sock_, *server_ctx_);
    co_await client_->async_handshake(ssl::stream_base::server, asio::buffer(early),
                                      asio::redirect_error(use_awaitable, ec));
    if (ec) {
      tunnel_error("TLS with the job: " + ec.message());
      co_return;
    }
    client_ctx_ = wrap(job_.inspection->client_context());
    while (co_await one_request()) {
    }
    co_await close_client();
  }

 private:
  // ---- records and answers ----

  Json fetch_record(const RequestHead& req) const {
    return {{"kind", "http"},  {"method", req.method},  {"url", t_.url()},  {"host", t_.host},
            {"port", t_.port}, {"started", job_.now()}, {"inspected", true}};
  }

  void tunnel_error(const std::string& why) {
    Json rec = {{"kind", "connect"},   {"host", t_.host}, {"port", t_.port},  {"started", started_},
                {"ended", job_.now()}, {"error", why},    {"inspected", true}};
    if (!address_.empty()) rec["address"] = address_;
    job_.add_fetch(std::move(rec));
    if (job_.note) job_.note("egress: CONNECT " + authority_ + ": " + why);
  }

  static std::string error_response(int status, const std::string& reason,
                                    const std::string& text) {
    std::string body = "lockstep egress: " + text + "\n";
    return "HTTP/1.1 " + std::to_string(status) + " " + reason +
           "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  }

  // Before the tunnel is up: the CONNECT itself fails.
  awaitable<void> plain_error(const std::string& why) {
    tunnel_error(why);
    error_code ec;
    std::string resp = error_response(502, "Bad Gateway", why);
    co_await asio::async_write(client_sock_, asio::buffer(resp),
                               asio::redirect_error(use_awaitable, ec));
    client_sock_.shutdown(tcp::socket::shutdown_both, ec);
  }

  // Inside the tunnel: the request fails with `status`, the tunnel closes.
  awaitable<bool> fail_request(Json rec, int status, const std::string& reason,
                               const std::string& why, const char* field = "error") {
    rec[field] = why;
    rec["ended"] = job_.now();
    if (!address_.empty()) rec["address"] = address_;
    job_.add_fetch(std::move(rec));
    if (job_.note) job_.note("egress: " + t_.url() + ": " + why);
    error_code ec;
    std::string resp = error_response(status, reason, why);
    co_await asio::async_write(*client_, asio::buffer(resp),
                               asio::redirect_error(use_awaitable, ec));
    co_return false;
  }

  awaitable<void> close_client() {
    // close_notify, without waiting long for the job's.
    error_code ec;
    asio::steady_timer timer(client_sock_.get_executor(), std::chrono::seconds(1));
    timer.async_wait([this](error_code e) {
      error_code ignored;
      if (!e) client_sock_.close(ignored);
    });
    co_await client_->async_shutdown(asio::redirect_error(use_awaitable, ec));
    timer.cancel();
    client_sock_.close(ec);
    up_.reset();
    up_sock_.close(ec);
  }

  // ---- reading ----

  // Reads from `s` until `buf` holds a whole head; its length, or 0 at the
  // end of the stream, on an error, or past kMaxHead.
  template <typename S>
  static awaitable<size_t> read_head(S& s, std::string& buf, error_code& ec) {
    std::vector<char> chunk(16384);
    for (;;) {
      if (auto end = buf.find("\r\n\r\n"); end != std::string::npos) co_return end + 4;
      if (buf.size() > kMaxHead) co_return 0;
      size_t n =
          co_await s.async_read_some(asio::buffer(chunk), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return 0;
      buf.append(chunk.data(), n);
    }
  }

  // Relays one body from `from` (whose bytes already read are in `buf`;
  // what follows the body stays there) to `to` (null: nowhere), its content
  // to `content`. `moved` counts the bytes relayed. False: the stream ended
  // or failed before the body did (a close-delimited body ends there).
  // With `side`, `content` runs there, in order, while this strand writes
  // that part to `to` and reads the next into the other of two buffers; a
  // buffer is read into again only once `side` is done with it, and every
  // call of `content` has returned when this does.
  template <typename From, typename To>
  static awaitable<bool> relay_body(From& from, To* to, std::string& buf, Framing& f,
                                    const std::function<void(std::string_view)>& content,
                                    uint64_t& moved, const asio::any_io_executor& side = {}) {
    std::vector<char> bufs[2];
    int cur = -1;  // `data` is in `buf`, else in bufs[cur]
    std::string_view data = buf;
    std::vector<std::string_view> parts;
    auto collect = [&parts](std::string_view c) {
      if (!c.empty()) parts.push_back(c);
    };
    bool absorbing = false;  // `side` may still be reading `data`'s buffer
    bool ok = false, done = false;
    size_t take = 0;
    error_code ec, read_ec;
    while (f.kind != Framing::kNone) {
      take = data.size();
      parts.clear();
      bool framed = true;
      if (f.kind == Framing::kLength) {
        take = static_cast<size_t>(std::min<uint64_t>(f.left, data.size()));
        collect(data.substr(0, take));
        f.left -= take;
        done = f.left == 0;
      } else if (f.kind == Framing::kChunked) {
        framed = f.chunks.feed(data, collect);
        done = framed && f.chunks.done();
        if (done) take = f.chunks.used();
      } else {
        collect(data);
      }
      if (!parts.empty() && side) {
        asio::post(side, [&content, parts] {
          for (auto c : parts) content(c);
        });
        absorbing = true;
      } else {
        for (auto c : parts) content(c);
      }
      if (!framed) break;
      if (take > 0 && to) {
        co_await asio::async_write(*to, asio::buffer(data.data(), take),
                                   asio::redirect_error(use_awaitable, ec));
        if (ec) break;
      }
      moved += take;
      if (done) break;
      if (read_ec) {  // the stream ended after the part just relayed
        ok = f.kind == Framing::kClose;
        break;
      }
      int next = cur == 0 ? 1 : 0;
      if (bufs[next].empty()) bufs[next].resize(kBodyBuffer);
      size_t n = 0;
      if (f.kind == Framing::kLength)
        // As much as the buffer holds of what the origin must still send:
        // fewer, larger parts for the hash and the write (a TLS read
        // yields one record, at most 16 KiB).
        n = co_await asio::async_read(from, asio::buffer(bufs[next]),
                                      asio::transfer_at_least(static_cast<size_t>(
                                          std::min<uint64_t>(f.left, bufs[next].size()))),
                                      asio::redirect_error(use_awaitable, read_ec));
      else
        n = co_await from.async_read_some(asio::buffer(bufs[next]),
                                          asio::redirect_error(use_awaitable, read_ec));
      // `side` is done with the buffer just relayed: it may be read into next.
      if (absorbing) co_await asio::post(side, use_awaitable);
      absorbing = false;
      cur = next;
      data = std::string_view(bufs[cur].data(), n);
      if (read_ec && n == 0) {
        ok = f.kind == Framing::kClose;
        break;
      }
    }
    if (absorbing) co_await asio::post(side, use_awaitable);
    if (f.kind == Framing::kNone) co_return true;
    if (done) {
      if (cur < 0)
        buf.erase(0, take);
      else
        buf.assign(data.substr(take));
      co_return true;
    }
    if (ok) buf.clear();  // a close-delimited body: all of it relayed
    co_return ok;
  }

  // ---- the origin ----

  // Connects and verifies; "" or why not.
  awaitable<std::string> open_upstream() {
    up_.reset();
    error_code ec = asio::error::host_not_found;
    for (const auto& target : targets_) {
      error_code ignored;
      up_sock_.close(ignored);
      co_await up_sock_.async_connect(target, asio::redirect_error(use_awaitable, ec));
      address_ = target.address().to_string();
      if (!ec) break;
    }
    if (ec) co_return "cannot connect to " + authority_ + ": " + ec.message();
    up_ = std::make_unique<SslStream>(up_sock_, *client_ctx_);
    SSL* h = up_->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(h);
    if (is_ip(t_.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, t_.host.c_str());
    } else {
      // SSL_set_tlsext_host_name without its C cast.
      SSL_ctrl(h, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(t_.host.c_str()));
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, t_.host.c_str(), 0);
    }
    co_await up_->async_handshake(ssl::stream_base::client,
                                  asio::redirect_error(use_awaitable, ec));
    if (ec) {
      long v = SSL_get_verify_result(h);
      up_.reset();
      up_sock_.close(ec);
      if (v != X509_V_OK)
        co_return "the certificate of " + t_.host + " does not verify: " + verify_error_text(v);
      co_return "TLS with " + t_.host + ": " + ec.message();
    }
    up_buf_.clear();
    reused_ = false;
    co_return "";
  }

  // ---- one request ----

  // False: the tunnel is done (closed by either side, or failed).
  awaitable<bool> one_request() {
    error_code ec;
    size_t hl = co_await read_head(*client_, cbuf_, ec);
    if (hl == 0) {
      if (cbuf_.empty()) co_return false;  // the job closed between requests
      tunnel_error(cbuf_.size() > kMaxHead ? "request head too large"
                                           : "the job's request inside the tunnel is not HTTP/1.1");
      co_return false;
    }
    auto req = parse_request_head(std::string_view(cbuf_).substr(0, hl));
    if (!req) {
      // An HTTP/2 client that ignored ALPN, or another protocol.
      tunnel_error(cbuf_.starts_with("PRI * HTTP/2.0")
                       ? "the job spoke HTTP/2 (only HTTP/1.1 is relayed under inspection)"
                       : "the job's request inside the tunnel is not HTTP/1.1");
      co_return false;
    }
    cbuf_.erase(0, hl);
    bool printable = std::all_of(req->target.begin(), req->target.end(), [](char c) {
      auto b = static_cast<unsigned char>(c);
      return b > 0x20 && b < 0x7F;
    });
    if (printable && req->target.starts_with("https://")) {
      // Absolute form inside a tunnel (RFC 9112 3.2.2): only for the
      // tunnel's own host.
      auto abs = parse_target("http://" + req->target.substr(8), false);
      if (abs && abs->host == t_.host) req->target = abs->path;
    }
    if (!printable || req->target[0] != '/') {
      tunnel_error("request target '" + (printable ? req->target : std::string("(not ASCII)")) +
                   "' inside the tunnel to " + t_.url());
      co_return false;
    }
    t_.path = req->target;
    if (auto hash = t_.path.find('#'); hash != std::string::npos) t_.path.resize(hash);
    Json rec = fetch_record(*req);
    auto reqf = framing_of(req->headers, true);
    if (!reqf) co_return co_await fail_request(rec, 400, "Bad Request", "bad Content-Length");
    bool close_after =
        has_token(req->headers, "connection", "close") ||
        (req->version == "HTTP/1.0" && !has_token(req->headers, "connection", "keep-alive"));
    // Expect: 100-continue is answered here; the origin gets the body at
    // once (it is relayed before the response is read).
    if (header(req->headers, "expect")) {
      std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(*client_, asio::buffer(cont),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return false;
    }
    bool download = req->method == "GET" || req->method == "HEAD";
    std::string pin;
    if (download && job_.pins) {
      if (auto it = job_.pins->find(t_.url()); it != job_.pins->end()) pin = it->second;
    }
    if (download && pin.empty() && job_.refuse_unpinned) {
      std::string why = "download " + t_.url() + " is not pinned by lockstep.lock (--frozen)";
      job_.violation(why);
      rec["refused"] = "not pinned";
      rec["ended"] = job_.now();
      job_.add_fetch(std::move(rec));
      std::string resp = error_response(403, "Forbidden", why);
      co_await asio::async_write(*client_, asio::buffer(resp),
                                 asio::redirect_error(use_awaitable, ec));
      co_return false;
    }
    if ((!pin.empty() && job_.store) && reqf->kind != Framing::kNone) {
      // The body of a download (there is none, normally) is not wanted.
      uint64_t ignored = 0;
      if (!co_await relay_body<SslStream, SslStream>(
              *client_, nullptr, cbuf_, *reqf, [](std::string_view) {}, ignored))
        co_return false;
      reqf->kind = Framing::kNone;
    }
    if (!pin.empty() && job_.store) {
      auto d = Digest::parse(pin);
      if (d && job_.store->has(*d))
        co_return co_await serve_stored(*d, req->method == "HEAD", std::move(rec), close_after);
    }

    // To the origin: the head without what the tunnel handles itself.
    std::string head = req->method + " " + t_.path + " " + req->version + "\r\n";
    for (const auto& [k, v] : req->headers) {
      std::string lk = k;
      for (auto& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lk == "expect" || lk == "upgrade" || lk == "proxy-connection" || lk == "keep-alive" ||
          lk == "te" || lk == "connection")
        continue;
      head += k + ": " + v + "\r\n";
    }
    if (close_after) head += "Connection: close\r\n";
    head += "\r\n";
    if (!pin.empty() && job_.store)
      co_return co_await fetch_pinned(*req, head, pin, std::move(rec), close_after);

    uint64_t up_bytes = 0, down_bytes = 0;
    // A kept-alive connection the origin has closed meanwhile is opened
    // again, for a request without a body (one that can be sent twice).
    for (int attempt = 0;; ++attempt) {
      if (!up_) {
        std::string why = co_await open_upstream();
        if (!why.empty()) co_return co_await fail_request(rec, 502, "Bad Gateway", why);
      }
      bool retry = reused_ && attempt == 0 && reqf->kind == Framing::kNone;
      co_await asio::async_write(*up_, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
      if (ec && retry) {
        up_.reset();
        continue;
      }
      if (ec)
        co_return co_await fail_request(rec, 502, "Bad Gateway",
                                        "send to " + t_.url() + ": " + ec.message());
      up_bytes = head.size();
      auto noop = [](std::string_view) {};
      if (!co_await relay_body(*client_, &*up_, cbuf_, *reqf, noop, up_bytes))
        co_return co_await fail_request(rec, 502, "Bad Gateway",
                                        "the request body did not reach " + t_.url());
      size_t rl = co_await read_head(*up_, up_buf_, ec);
      if (rl == 0 && retry && up_buf_.empty()) {
        up_.reset();
        continue;
      }
      if (rl == 0)
        co_return co_await fail_request(
            rec, 502, "Bad Gateway",
            "no response from " + t_.url() + (ec ? ": " + ec.message() : std::string()));
      // Interim responses (103 Early Hints) go to the job as they are.
      auto resp = parse_response_head(std::string_view(up_buf_).substr(0, rl));
      while (resp && resp->status >= 100 && resp->status < 200 && resp->status != 101) {
        co_await asio::async_write(*client_, asio::buffer(up_buf_.data(), rl),
                                   asio::redirect_error(use_awaitable, ec));
        down_bytes += rl;
        up_buf_.erase(0, rl);
        rl = co_await read_head(*up_, up_buf_, ec);
        resp = rl ? parse_response_head(std::string_view(up_buf_).substr(0, rl)) : std::nullopt;
      }
      if (!resp || resp->status == 101)
        co_return co_await fail_request(rec, 502, "Bad Gateway",
                                        t_.url() + " did not answer with HTTP/1.1");
      co_return co_await relay_response(*req, *resp, rl, std::move(rec), up_bytes, down_bytes,
                                        close_after);
    }
  }

  awaitable<bool> relay_response(const RequestHead& req, const ResponseHead& resp, size_t rl,
                                 Json rec, uint64_t up_bytes, uint64_t down_bytes,
                                 bool close_after) {
    error_code ec;
    bool no_body = req.method == "HEAD" || resp.status == 204 || resp.status == 304;
    auto f = framing_of(resp.headers, false);
    if (!f) co_return co_await fail_request(rec, 502, "Bad Gateway", "bad Content-Length");
    if (no_body) f->kind = Framing::kNone;
    std::optional<cache::BlobWriter> blob;
    if (job_.store && resp.status == 200 && !no_body)
      if (auto w = job_.store->writer()) blob.emplace(std::move(*w));
    Sha256 sha;
    bool blob_ok = true;
    uint64_t body = 0;
    auto content = [&](std::string_view c) {
      body += c.size();
      if (!blob)
        sha.update(c);
      else if (blob_ok && !blob->write(c))
        blob_ok = false;
    };
    co_await asio::async_write(*client_, asio::buffer(up_buf_.data(), rl),
                               asio::redirect_error(use_awaitable, ec));
    down_bytes += rl;
    up_buf_.erase(0, rl);
    bool complete = !ec && co_await relay_body(*up_, &*client_, up_buf_, *f, content, down_bytes,
                                               job_.body_strand);
    rec["status"] = resp.status;
    rec["body_bytes"] = body;
    rec["bytes_out"] = up_bytes;
    rec["bytes_in"] = down_bytes;
    rec["address"] = address_;
    if (!blob) {
      rec["sha256"] = sha.finish().str();
    } else {
      Result<Digest> d = fail("write failed");
      if (blob_ok) d = co_await commit(*blob);
      if (d) {
        // The store hashed the body as it wrote it.
        rec["sha256"] = d->str();
        if (complete) rec["stored"] = true;
      } else {
        rec["error"] = "content store: " + d.error().message();
      }
    }
    if (!complete) rec["error"] = "the response from " + t_.url() + " ended early";
    rec["ended"] = job_.now();
    job_.add_fetch(std::move(rec));
    reused_ = true;
    bool origin_closes =
        f->kind == Framing::kClose || has_token(resp.headers, "connection", "close");
    if (origin_closes) up_.reset();
    // A close-delimited body ends for the job when the tunnel does.
    co_return complete && !close_after && f->kind != Framing::kClose;
  }

  // Commits a kept body on the body strand: its fsync does not hold up the
  // job's other connections.
  awaitable<Result<Digest>> commit(cache::BlobWriter& blob) {
    if (!job_.body_strand) co_return blob.commit();
    std::optional<Result<Digest>> committed;
    asio::post(job_.body_strand, [&] { committed.emplace(blob.commit()); });
    co_await asio::post(job_.body_strand, use_awaitable);
    co_return std::move(*committed);
  }

  // A pinned URL whose body is in the store: served from there.
  awaitable<bool> serve_stored(const Digest& d, bool head_only, Json rec, bool close_after) {
    error_code ec;
    auto fd = job_.store->open(d);
    auto size = job_.store->size(d);
    if (!fd || !size)
      co_return co_await fail_request(rec, 502, "Bad Gateway",
                                      "cannot read the stored body of " + t_.url());
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(*size) +
                       (close_after ? "\r\nConnection: close" : "") + "\r\n\r\n";
    co_await asio::async_write(*client_, asio::buffer(head),
                               asio::redirect_error(use_awaitable, ec));
    uint64_t sent = 0;
    std::vector<char> buf(256 * 1024);
    while (!ec && !head_only) {
      ssize_t n = ::read(fd->get(), buf.data(), buf.size());
      if (n <= 0) break;
      co_await asio::async_write(*client_, asio::buffer(buf.data(), static_cast<size_t>(n)),
                                 asio::redirect_error(use_awaitable, ec));
      sent += static_cast<uint64_t>(n);
    }
    rec["status"] = 200;
    rec["sha256"] = d.str();
    rec["body_bytes"] = head_only ? 0 : sent;
    rec["served"] = "store";
    rec["pinned"] = true;
    rec["ended"] = job_.now();
    job_.add_fetch(std::move(rec));
    co_return !ec && !close_after;
  }

  // A pinned URL not in the store yet: the whole body from the origin into
  // the store, checked against the pin, then served from the store.
  awaitable<bool> fetch_pinned(const RequestHead& req, std::string head, const std::string& pin,
                               Json rec, bool close_after) {
    error_code ec;
    if (req.method == "HEAD") head.replace(0, 4, "GET");
    if (!up_) {
      std::string why = co_await open_upstream();
      if (!why.empty()) co_return co_await fail_request(rec, 502, "Bad Gateway", why);
    }
    co_await asio::async_write(*up_, asio::buffer(head), asio::redirect_error(use_awaitable, ec));
    size_t rl = ec ? 0 : co_await read_head(*up_, up_buf_, ec);
    auto resp = rl ? parse_response_head(std::string_view(up_buf_).substr(0, rl)) : std::nullopt;
    // The store hashes the body as it writes it: that digest is checked
    // against the pin.
    auto writer = job_.store->writer();
    Status written;
    uint64_t bytes = 0, moved = 0;
    bool complete = false;
    std::optional<Framing> f;
    if (resp) {
      up_buf_.erase(0, rl);
      f = framing_of(resp->headers, false);
      auto content = [&](std::string_view c) {
        bytes += c.size();
        if (writer && written) written = writer->write(c);
      };
      if (f)
        complete =
            co_await relay_body<SslStream, SslStream>(*up_, nullptr, up_buf_, *f, content, moved);
    }
    up_.reset();  // what followed the body, if anything, is not wanted
    int status = resp ? resp->status : 0;
    rec["status"] = status;
    rec["body_bytes"] = bytes;
    rec["address"] = address_;
    if (status != 200 || !complete || !writer || !written) {
      std::string why = "pinned download " + t_.url() + ": the origin answered " +
                        (status ? std::to_string(status) : std::string("nothing")) +
                        (!writer    ? " (the content store: " + writer.error().message() + ")"
                         : !written ? " (the content store: " + written.error().message() + ")"
                                    : "");
      job_.violation(why);
      co_return co_await fail_request(rec, 502, "Bad Gateway", why);
    }
    Digest got = writer->digest();
    rec["sha256"] = got.str();
    if (got.str() != pin) {
      std::string why =
          "download " + t_.url() + " has " + got.str() + ", lockstep.lock pins " + pin;
      job_.violation(why);
      co_return co_await fail_request(rec, 502, "Bad Gateway", why, "refused");
    }
    auto committed = co_await commit(*writer);
    if (!committed)
      co_return co_await fail_request(rec, 502, "Bad Gateway",
                                      "store " + t_.url() + ": " + committed.error().message());
    rec.erase("status");
    co_return co_await serve_stored(got, req.method == "HEAD", std::move(rec), close_after);
  }

  tcp::socket& client_sock_;
  tcp::socket& up_sock_;
  Target t_;
  std::vector<tcp::endpoint> targets_;
  TunnelJob job_;
  std::string started_ = job_.now();
  std::shared_ptr<ssl::context> server_ctx_, client_ctx_;
  std::optional<SslStream> client_;
  std::unique_ptr<SslStream> up_;
  std::string cbuf_, up_buf_;  // read, not yet relayed
  std::string authority_;      // "host:port" of the CONNECT
  std::string address_;
  bool reused_ = false;  // up_ has carried a request
};

}  // namespace

awaitable<void> run_inspected_tunnel(tcp::socket& client, tcp::socket& upstream, Target t,
                                     std::vector<tcp::endpoint> targets, std::string early,
                                     TunnelJob job) {
  auto tunnel =
      std::make_unique<Tunnel>(client, upstream, std::move(t), std::move(targets), std::move(job));
  co_await tunnel->run(std::move(early));
}

}  // namespace lockstep::egress::detail
