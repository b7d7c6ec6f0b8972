#include "registry-mirror/http.hpp"
#include "common/text.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cstring>
#include <mutex>

namespace lockstep::registry {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

struct Transfer {
  CURL* curl = nullptr;
  const HttpRequest* req = nullptr;
  HttpResponse* resp = nullptr;
  std::optional<Error> callback_error;
  bool status_known = false;
  bool stream = false;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new status line (after a 100 Continue, say): forget earlier headers.
    t->resp->headers.clear();
    t->status_known = false;
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->resp->headers.emplace_back(ascii_lower(trim(line.substr(0, colon))),
                                  trim(line.substr(colon + 1)));
  }
  return size * n;
}

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!t->status_known) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->stream = t->req->on_data && code >= 200 && code < 300;
    t->status_known = true;
    if (t->stream && t->req->on_start) {
      if (auto st = t->req->on_start(code, *t->resp); !st) {
        t->callback_error = st.error();
        return CURL_WRITEFUNC_ERROR;
      }
    }
  }
  if (t->stream) {
    if (auto st = t->req->on_data(data, len); !st) {
      t->callback_error = st.error();
      return CURL_WRITEFUNC_ERROR;
    }
    t->resp->bytes_streamed += len;
    return len;
  }
  if (t->resp->body.size() + len > t->req->max_body) {
    t->callback_error =
        Error("response body larger than " + std::to_string(t->req->max_body) + " bytes", 0,
              ErrorKind::kIntegrity);
    return CURL_WRITEFUNC_ERROR;
  }
  t->resp->body.append(data, len);
  return len;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  std::string n = ascii_lower(name);
  for (auto it = headers.rbegin(); it != headers.rend(); ++it)
    if (it->first == n) return it->second;
  return std::nullopt;
}

struct HttpSession::Impl {
  CURL* curl = nullptr;
  Impl() {
    global_init();
    curl = curl_easy_init();
  }
  ~Impl() {
    if (curl) curl_easy_cleanup(curl);
  }
};

HttpSession::HttpSession() : impl_(std::make_unique<Impl>()) {}
HttpSession::~HttpSession() = default;
HttpSession::HttpSession(HttpSession&&) noexcept = default;
HttpSession& HttpSession::operator=(HttpSession&&) noexcept = default;

Result<HttpResponse> HttpSession::perform(const HttpRequest& req) {
  CURL* c = impl_->curl;
  if (!c) return fail("curl_easy_init failed", ErrorKind::kGeneric);
  curl_easy_reset(c);
  HttpResponse resp;
  Transfer t{c, &req, &resp, std::nullopt, false, false};
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  // libcurl adds "Expect: 100-continue" to large uploads; registries do not need it.
  headers = curl_slist_append(headers, "Expect:");

  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lockstep/0.1");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for 60 s) is a transport failure.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  // Set on every request: the handle is reused, 0 means no limit.
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req.timeout_ms);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 256L * 1024);
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    // Never a null pointer: that would make libcurl read the body from stdin.
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.empty() ? "" : req.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }

  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (t.callback_error) return fail(*t.callback_error);
  if (rc != CURLE_OK) {
    long os_errno = 0;
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
    std::string why;
    if (rc == CURLE_COULDNT_CONNECT && os_errno != 0)
      why = std::strerror(static_cast<int>(os_errno));
    else
      why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return fail(Error(why, static_cast<int>(os_errno), ErrorKind::kUnavailable));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  if (resp.status >= 300 && resp.status < 400) {
    char* loc = nullptr;
    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc);
    if (loc) resp.redirect_url = loc;
  }
  return resp;
}

std::string url_origin(std::string_view url) {
  global_init();
  CURLU* u = curl_url();
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, std::string(url).c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (scheme && host)
      out = ascii_lower(scheme) + "://" + ascii_lower(host) + ":" + (port ? port : "");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

std::string url_resolve(std::string_view base, std::string_view relative) {
  global_init();
  CURLU* u = curl_url();
  std::string out(relative);
  if (curl_url_set(u, CURLUPART_URL, std::string(base).c_str(), 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, std::string(relative).c_str(), 0) == CURLUE_OK) {
    char* full = nullptr;
    if (curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK && full) out = full;
    curl_free(full);
  }
  curl_url_cleanup(u);
  return out;
}

std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace lockstep::registry
