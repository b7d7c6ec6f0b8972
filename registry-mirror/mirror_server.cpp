#include "registry-mirror/mirror_server.hpp"

// Asio's scheduler trips GCC 12's flow-based -Wnull-dereference once inlined
// (a thread-info pointer it checks on another path); the warning is about
// Boost's code, not ours.
#pragma GCC diagnostic ignored "-Wnull-dereference"
// Under -fsanitize=thread GCC warns that Asio's fences are invisible to TSan;
// Asio's own mutexes and atomics still are, which is what the checks need.
#pragma GCC diagnostic ignored "-Wtsan"

#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <thread>

#include "common/json.hpp"
#include "common/time.hpp"
#include "registry-mirror/mirror_blobs.hpp"
#include "registry-mirror/mirror_manifests.hpp"
#include "registry-mirror/mirror_route.hpp"
#include "registry-mirror/mirror_store.hpp"
#include "registry-mirror/mirror_upstream.hpp"

namespace lockstep::registry {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

namespace {

constexpr size_t kSendfileChunk = 4u << 20;

// What the access log says about one request.
struct Outcome {
  unsigned status = 0;
  uint64_t bytes = 0;
  std::string cache = "-";  // hit, miss, stale
  std::string upstream;
};

template <class T>
awaitable<T> run_blocking(std::function<T()> f) {
  co_return f();
}

std::vector<std::unique_ptr<asio::io_context>> make_io_contexts(unsigned n) {
  std::vector<std::unique_ptr<asio::io_context>> v;
  // Hint 1: each context is run by exactly one thread (posting to it from
  // others stays safe), so its scheduler never hands work to another thread.
  for (unsigned i = 0; i < std::max(1u, n); ++i) v.push_back(std::make_unique<asio::io_context>(1));
  return v;
}

std::string rfc3339_now() {
  return rfc3339_ms(std::chrono::system_clock::now());
}

}  // namespace

struct MirrorServer::Impl {
  explicit Impl(MirrorConfig c)
      : cfg(std::move(c)),
        blobs(cfg.state_dir),
        store(blobs, cfg.max_size, metrics),
        fetcher(store, metrics),
        manifests(store, cfg.state_dir / "mirror", cfg.tag_ttl, metrics),
        ios(make_io_contexts(cfg.threads)),
        io(*ios[0]),
        upstream_pool(cfg.upstream_threads),
        acceptor(io) {}

  MirrorConfig cfg;
  MirrorMetrics metrics;
  cache::BlobStore blobs;
  MirrorStore store;
  BlobFetcher fetcher;
  ManifestCache manifests;
  std::map<std::string, std::unique_ptr<Upstream>> upstreams;
  RouteTable table;
  // One io_context per HTTP thread. A connection lives on one of them for its
  // whole life, so its handlers never run concurrently and need no strand,
  // and no scheduler lock or cross-thread wakeup is paid per sendfile round.
  // `io` (the first) also runs the acceptor, signals and shutdown.
  std::vector<std::unique_ptr<asio::io_context>> ios;
  asio::io_context& io;
  size_t next_io = 0;  // round robin; used by the accept loop only
  asio::thread_pool upstream_pool;
  tcp::acceptor acceptor;
  std::FILE* access_log = nullptr;
  std::mutex log_mu;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopping{false};

  ~Impl() {
    if (access_log && access_log != stderr) std::fclose(access_log);
  }

  void log_access(const std::string& remote, std::string_view method, std::string_view target,
                  const Outcome& o, std::chrono::steady_clock::duration took) {
    Json j = {{"time", rfc3339_now()},
              {"remote", remote},
              {"method", method},
              {"target", target},
              {"status", o.status},
              {"bytes", o.bytes},
              {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(took).count()},
              {"cache", o.cache}};
    if (!o.upstream.empty()) j["upstream"] = o.upstream;
    // The target is logged as received; bytes that are not UTF-8 (refused
    // with 400, but logged) are written as U+FFFD, never thrown on.
    std::string line = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    std::lock_guard lock(log_mu);
    std::fwrite(line.data(), 1, line.size(), access_log);
    std::fflush(access_log);
  }

  // ---- responses -------------------------------------------------------

  template <class Req>
  awaitable<bool> send_text(tcp::socket& sock, const Req& req, unsigned status,
                            std::string_view content_type, std::string body,
                            const std::vector<std::pair<std::string, std::string>>& extra,
                            Outcome& o) {
    http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
    res.set(http::field::server, "lockstep-mirror");
    res.set("Docker-Distribution-API-Version", "registry/2.0");
    res.set(http::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    for (const auto& [k, v] : extra) res.set(k, v);
    res.keep_alive(req.keep_alive() && !stopping);
    res.content_length(body.size());
    bool head = req.method() == http::verb::head;
    if (!head) res.body() = std::move(body);
    o.status = status;
    o.bytes = head ? 0 : res.body().size();
    beast::error_code ec;
    if (head) {
      http::response_serializer<http::string_body> sr{res};
      co_await http::async_write_header(sock, sr, asio::redirect_error(use_awaitable, ec));
    } else {
      co_await http::async_write(sock, res, asio::redirect_error(use_awaitable, ec));
    }
    metrics.response(static_cast<int>(status));
    if (!ec) metrics.bytes_served(o.bytes);
    co_return !ec && res.keep_alive();
  }

  template <class Req>
  awaitable<bool> send_error(tcp::socket& sock, const Req& req, unsigned status,
                             std::string_view code, std::string_view message, Outcome& o,
                             std::vector<std::pair<std::string, std::string>> extra = {}) {
    co_return co_await send_text(sock, req, status, "application/json", error_body(code, message),
                                 extra, o);
  }

  // Waits until the download's state moves past what the caller saw (or a
  // second passes: a safety net, the caller re-reads the state anyway).
  awaitable<void> wait_change(BlobDownload& dl, uint64_t seen, bool seen_headers) {
    auto ex = co_await asio::this_coro::executor;
    auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::seconds(1));
    // The session's io_context has one thread: the posted cancel cannot run
    // before async_wait below has started.
    dl.on_change(seen, seen_headers, [timer, ex] { asio::post(ex, [timer] { timer->cancel(); }); });
    beast::error_code ec;
    co_await timer->async_wait(asio::redirect_error(use_awaitable, ec));
  }

  // Sends [range of] a blob from fd; with dl, the file may still be growing.
  template <class Req>
  awaitable<bool> send_blob(tcp::socket& sock, const Req& req, int fd, uint64_t total,
                            const Digest& d, std::shared_ptr<BlobDownload> dl, Outcome& o) {
    uint64_t first = 0, last = total ? total - 1 : 0;
    bool partial = false;
    if (auto r = req.find(http::field::range); r != req.end()) {
      if (!parse_byte_range(std::string_view(r->value().data(), r->value().size()), total, first,
                            last)) {
        std::vector<std::pair<std::string, std::string>> extra;
        extra.emplace_back(std::string("Content-Range"), "bytes */" + std::to_string(total));
        co_return co_await send_error(sock, req, 416, "BLOB_UNKNOWN",
                                      "requested range not satisfiable", o, std::move(extra));
      }
      partial = true;
    }
    uint64_t len = total ? last - first + 1 : 0;
    http::response<http::empty_body> res{partial ? http::status::partial_content : http::status::ok,
                                         req.version()};
    res.set(http::field::server, "lockstep-mirror");
    res.set("Docker-Distribution-API-Version", "registry/2.0");
    res.set(http::field::content_type, "application/octet-stream");
    res.set("Docker-Content-Digest", d.str());
    res.set(http::field::etag, "\"" + d.str() + "\"");
    res.set(http::field::accept_ranges, "bytes");
    res.set(http::field::cache_control, "max-age=31536000");
    if (partial)
      res.set(http::field::content_range, "bytes " + std::to_string(first) + "-" +
                                              std::to_string(last) + "/" + std::to_string(total));
    res.content_length(len);
    res.keep_alive(req.keep_alive() && !stopping);
    o.status = partial ? 206 : 200;
    metrics.response(static_cast<int>(o.status));
    beast::error_code ec;
    http::response_serializer<http::empty_body> sr{res};
    co_await http::async_write_header(sock, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    if (req.method() == http::verb::head) co_return res.keep_alive();

    sock.native_non_blocking(true, ec);
    uint64_t off = first;
    const uint64_t end = first + len;
    while (off < end) {
      uint64_t avail = end;
      if (dl) {
        DownloadState st = dl->state();
        if (st.failed) break;  // cut the body short: the client sees the error
        if (!st.done) {
          avail = std::min(end, st.readable);
          if (off >= avail) {
            co_await wait_change(*dl, st.readable, st.headers);
            continue;
          }
        }
      }
      off_t pos = static_cast<off_t>(off);
      const size_t want = static_cast<size_t>(std::min<uint64_t>(avail - off, kSendfileChunk));
      ssize_t n = ::sendfile(sock.native_handle(), fd, &pos, want);
      if (n > 0) {
        off += static_cast<uint64_t>(n);
        o.bytes += static_cast<uint64_t>(n);
        metrics.bytes_served(static_cast<uint64_t>(n));
        // A short write means the socket buffer is full: the next sendfile
        // would only fail with EAGAIN, so wait for room straight away.
        if (static_cast<size_t>(n) == want || off >= end) continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n > 0 || (n < 0 && errno == EAGAIN)) {
        co_await sock.async_wait(tcp::socket::wait_write, asio::redirect_error(use_awaitable, ec));
        if (ec) break;
        continue;
      }
      break;  // client gone (EPIPE, ECONNRESET) or the file ended early
    }
    if (off < end) {
      sock.close(ec);
      co_return false;
    }
    co_return res.keep_alive();
  }

  template <class Req>
  awaitable<bool> serve_blob(tcp::socket& sock, const Req& req, const Route& r, Upstream& up,
                             Outcome& o) {
    if (!r.digest)
      co_return co_await send_error(sock, req, 400, "DIGEST_INVALID",
                                    "invalid digest '" + r.reference + "'", o);
    const Digest& d = *r.digest;
    store.pin(d);
    struct Unpin {
      MirrorStore& s;
      Digest d;
      ~Unpin() { s.unpin(d); }
    } unpin{store, d};
    auto from_store = [&]() -> std::optional<std::pair<UniqueFd, uint64_t>> {
      auto fd = blobs.open(d);
      if (!fd) return std::nullopt;
      struct stat st {};
      if (::fstat(fd->get(), &st) != 0) return std::nullopt;
      return std::make_pair(std::move(*fd), static_cast<uint64_t>(st.st_size));
    };
    if (auto f = from_store()) {
      o.cache = "hit";
      metrics.hit("blob");
      store.touch(d);
      co_return co_await send_blob(sock, req, f->first.get(), f->second, d, nullptr, o);
    }
    auto dl = fetcher.join(up, r.repo, d);
    if (!dl) {  // published between our look and the join
      if (auto f = from_store()) {
        o.cache = "hit";
        metrics.hit("blob");
        co_return co_await send_blob(sock, req, f->first.get(), f->second, d, nullptr, o);
      }
      co_return co_await send_error(sock, req, 503, "UNAVAILABLE", "blob vanished from the store",
                                    o);
    }
    o.cache = "miss";
    metrics.miss("blob");
    metrics.waiters.fetch_add(1);
    struct Unwait {
      MirrorMetrics& m;
      ~Unwait() { m.waiters.fetch_sub(1); }
    } unwait{metrics};
    DownloadState st = dl->state();
    while (!st.failed && !st.done && !(st.headers && st.size)) {
      co_await wait_change(*dl, st.readable, st.headers);
      st = dl->state();
    }
    if (st.failed) {
      ManifestAnswer a;
      map_upstream_failure(st.status, "BLOB_UNKNOWN", "blob " + d.str(), a);
      std::vector<std::pair<std::string, std::string>> extra;
      if (st.retry_after)
        extra.emplace_back("Retry-After", std::to_string(st.retry_after->count()));
      if (st.status == 0) a.message = st.error;
      co_return co_await send_error(sock, req, static_cast<unsigned>(a.status), a.code, a.message,
                                    o, extra);
    }
    co_return co_await send_blob(sock, req, dl->fd(), *st.size, d, dl, o);
  }

  template <class Req>
  awaitable<bool> serve_manifest(tcp::socket& sock, const Req& req, const Route& r, Upstream& up,
                                 Outcome& o) {
    if (!r.digest && r.reference.find(':') != std::string::npos)
      co_return co_await send_error(sock, req, 400, "DIGEST_INVALID",
                                    "invalid digest '" + r.reference + "'", o);
    std::function<ManifestAnswer()> f = [this, &up, repo = r.repo, ref = r.reference,
                                         dg = r.digest] {
      return manifests.get(up, repo, ref, dg);
    };
    ManifestAnswer a =
        co_await asio::co_spawn(upstream_pool, run_blocking(std::move(f)), use_awaitable);
    if (a.status != 200) {
      std::vector<std::pair<std::string, std::string>> extra;
      if (a.retry_after) extra.emplace_back("Retry-After", std::to_string(a.retry_after->count()));
      co_return co_await send_error(sock, req, static_cast<unsigned>(a.status), a.code, a.message,
                                    o, extra);
    }
    o.cache = a.stale.empty() ? (a.hit ? "hit" : "miss") : "stale";
    std::vector<std::pair<std::string, std::string>> extra = {
        {"Docker-Content-Digest", a.digest.str()}, {"ETag", "\"" + a.digest.str() + "\""}};
    if (!a.stale.empty()) {
      extra.emplace_back("X-Lockstep-Mirror-Stale", a.stale);
      extra.emplace_back("Warning", "110 - \"Response is Stale\"");
    }
    co_return co_await send_text(sock, req, 200, a.media_type, std::move(a.body), extra, o);
  }

  template <class Req>
  awaitable<bool> serve_passthrough(tcp::socket& sock, const Req& req, const Route& r, Upstream& up,
                                    Outcome& o) {
    bool catalog = r.endpoint == Endpoint::kCatalog;
    std::string suffix = catalog ? "_catalog" : "tags/list";
    if (!r.query.empty()) suffix += "?" + r.query;
    std::function<Result<HttpResponse>()> f = [&up, catalog, repo = r.repo, suffix] {
      if (auto refused = up.admit(false)) {
        HttpResponse resp;
        resp.status = 429;
        resp.headers.emplace_back("retry-after", std::to_string(refused->retry_after.count()));
        return Result<HttpResponse>(std::move(resp));
      }
      return up.request(catalog ? "catalog" : "tags", "GET", catalog ? "" : repo, suffix);
    };
    auto resp = co_await asio::co_spawn(upstream_pool, run_blocking(std::move(f)), use_awaitable);
    if (!resp || resp->status != 200) {
      ManifestAnswer a;
      map_upstream_failure(resp ? resp->status : 0, "NAME_UNKNOWN",
                           catalog ? std::string("catalog") : "tags of " + r.repo, a);
      std::vector<std::pair<std::string, std::string>> extra;
      if (resp)
        if (auto ra = resp->header("retry-after")) extra.emplace_back("Retry-After", *ra);
      co_return co_await send_error(sock, req, static_cast<unsigned>(a.status), a.code, a.message,
                                    o, extra);
    }
    o.cache = "miss";
    std::vector<std::pair<std::string, std::string>> extra;
    if (auto link = resp->header("link")) extra.emplace_back("Link", *link);
    co_return co_await send_text(sock, req, 200,
                                 resp->header("content-type").value_or("application/json"),
                                 std::move(resp->body), extra, o);
  }

  template <class Req>
  awaitable<bool> handle(tcp::socket& sock, const Req& req, Outcome& o) {
    std::string_view target(req.target().data(), req.target().size());
    Route r = route_request(target, table);
    bool get_or_head = req.method() == http::verb::get || req.method() == http::verb::head;
    switch (r.endpoint) {
      case Endpoint::kBase:
        if (!get_or_head) break;
        co_return co_await send_text(sock, req, 200, "application/json", "{}", {}, o);
      case Endpoint::kMetrics:
        if (!get_or_head) break;
        co_return co_await send_text(sock, req, 200, "text/plain; version=0.0.4", metrics.render(),
                                     {}, o);
      case Endpoint::kBadRequest:
        co_return co_await send_error(sock, req, 400, r.error_code, r.error_message, o);
      case Endpoint::kNotFound:
        if (!r.unknown_registry.empty())
          co_return co_await send_error(sock, req, 404, "NAME_UNKNOWN",
                                        "no upstream serves registry '" + r.unknown_registry + "'",
                                        o);
        co_return co_await send_error(sock, req, 404, "NAME_UNKNOWN",
                                      "no such repository or endpoint", o);
      case Endpoint::kUnsupported:
        break;
      default: {
        if (!get_or_head) break;
        Upstream& up = *upstreams.at(r.upstream);
        o.upstream = up.name();
        if (r.endpoint == Endpoint::kBlob) co_return co_await serve_blob(sock, req, r, up, o);
        if (r.endpoint == Endpoint::kManifest)
          co_return co_await serve_manifest(sock, req, r, up, o);
        co_return co_await serve_passthrough(sock, req, r, up, o);
      }
    }
    co_return co_await send_error(sock, req, 405, "UNSUPPORTED",
                                  "the mirror is read-only: only GET and HEAD are served", o);
  }

  awaitable<void> session(tcp::socket sock) {
    beast::error_code ec;
    std::string remote;
    {
      auto ep = sock.remote_endpoint(ec);
      if (!ec) remote = ep.address().to_string();
    }
    beast::flat_buffer buf;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(1u << 20);
      parser.header_limit(64u << 10);
      co_await http::async_read(sock, buf, parser, asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      auto req = parser.release();
      in_flight.fetch_add(1);
      auto t0 = std::chrono::steady_clock::now();
      Outcome o;
      bool keep = false;
      try {
        keep = co_await handle(sock, req, o);
      } catch (const std::exception& e) {
        spdlog::error("mirror: {} {}: {}", std::string(req.method_string()),
                      std::string(req.target()), e.what());
        keep = false;
      }
      log_access(remote, std::string_view(req.method_string().data(), req.method_string().size()),
                 std::string_view(req.target().data(), req.target().size()), o,
                 std::chrono::steady_clock::now() - t0);
      in_flight.fetch_sub(1);
      if (!keep || stopping) break;
    }
    sock.shutdown(tcp::socket::shutdown_send, ec);
    sock.close(ec);
  }

  awaitable<void> accept_loop() {
    for (;;) {
      beast::error_code ec;
      tcp::socket sock(*ios[next_io++ % ios.size()]);
      co_await acceptor.async_accept(sock, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopping || ec == asio::error::operation_aborted) co_return;
        spdlog::warn("mirror: accept: {}", ec.message());
        continue;
      }
      sock.set_option(tcp::no_delay(true), ec);
      auto ex = sock.get_executor();
      asio::co_spawn(ex, session(std::move(sock)), asio::detached);
    }
  }

  // Stops accepting, waits for in-flight responses (bounded by the grace),
  // then stops the I/O threads.
  awaitable<void> drain() {
    auto deadline = std::chrono::steady_clock::now() + cfg.shutdown_grace;
    asio::steady_timer t(io);
    while (in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      t.expires_after(std::chrono::milliseconds(20));
      beast::error_code ec;
      co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    if (in_flight.load() > 0)
      spdlog::warn("mirror: shutdown grace over with {} responses in flight", in_flight.load());
    stop_all();
  }

  void stop_all() {
    for (auto& c : ios) c->stop();
  }

  void begin_shutdown() {
    if (stopping.exchange(true)) return;
    spdlog::info("mirror: shutting down: finishing {} in-flight responses", in_flight.load());
    beast::error_code ec;
    acceptor.close(ec);
    asio::co_spawn(io, drain(), asio::detached);
  }
};

MirrorServer::MirrorServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MirrorServer::~MirrorServer() {
  if (impl_) {
    impl_->stop_all();
    impl_->fetcher.abort_all();
    impl_->upstream_pool.join();
  }
}

Result<std::unique_ptr<MirrorServer>> MirrorServer::create(MirrorConfig cfg) {
  LS_TRY(validate_mirror_config(cfg));
  std::error_code fec;
  std::filesystem::create_directories(cfg.state_dir / "mirror", fec);
  if (fec)
    return fail(Error("create mirror state dir " + cfg.state_dir.string() + ": " + fec.message(),
                      fec.value()));
  auto impl = std::make_unique<Impl>(cfg);
  for (const auto& u : impl->cfg.upstreams) {
    impl->upstreams[u.name] = std::make_unique<Upstream>(u, impl->metrics);
    impl->table.upstreams.push_back(u.name);
    if (impl->upstreams[u.name]->is_docker_hub()) impl->table.docker_hub.push_back(u.name);
    impl->table.registries.emplace_back(impl->upstreams[u.name]->domain(), u.name);
  }
  impl->table.default_upstream = impl->cfg.default_upstream;
  if (impl->cfg.access_log.empty()) {
    impl->access_log = stderr;
  } else {
    impl->access_log = std::fopen(impl->cfg.access_log.c_str(), "ae");
    if (!impl->access_log) return fail_errno("open access log " + impl->cfg.access_log.string());
  }
  beast::error_code ec;
  auto addr = asio::ip::make_address(impl->cfg.listen_host, ec);
  if (ec)
    return fail("mirror: invalid listen address '" + impl->cfg.listen_host + "'",
                ErrorKind::kUsage);
  tcp::endpoint ep(addr, impl->cfg.listen_port);
  const std::string where = impl->cfg.listen_host + ":" + std::to_string(impl->cfg.listen_port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(Error("mirror: listen on " + where + ": " + ec.message(), ec.value()));
  return std::unique_ptr<MirrorServer>(new MirrorServer(std::move(impl)));
}

uint16_t MirrorServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

MirrorMetrics& MirrorServer::metrics() {
  return impl_->metrics;
}

void MirrorServer::stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->begin_shutdown(); });
}

Status MirrorServer::run(bool handle_signals) {
  Impl& m = *impl_;
  std::optional<asio::signal_set> signals;
  if (handle_signals) {
    signals.emplace(m.io, SIGTERM, SIGINT);
    signals->async_wait([&m](const beast::error_code& ec, int sig) {
      if (ec) return;
      spdlog::info("mirror: got signal {}", sig);
      m.begin_shutdown();
    });
  }
  spdlog::info("mirror: listening on {}:{}", m.cfg.listen_host, port());
  asio::co_spawn(m.io, m.accept_loop(), asio::detached);
  // The other contexts have no work until connections arrive: keep them running.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep;
  std::vector<std::thread> threads;
  for (size_t i = 1; i < m.ios.size(); ++i) {
    keep.push_back(asio::make_work_guard(*m.ios[i]));
    threads.emplace_back([c = m.ios[i].get()] { c->run(); });
  }
  m.io.run();
  for (auto& t : threads) t.join();
  // Downloads nobody waits for any more are abandoned: their temp files
  // vanish and nothing is published.
  m.fetcher.abort_all();
  spdlog::info("mirror: stopped");
  return {};
}

}  // namespace lockstep::registry
