// What the egress network reads from a job: the recording proxy's request
// and response heads, proxy targets and chunked bodies, and the DNS stub's
// queries and the answers it relays. A target that parses must give a URL
// that is printable ASCII (it goes into the record), and a chunked body
// never decodes to more bytes than it holds.
#include <cstdint>
#include <string>
#include <string_view>

#include "egress/dns.hpp"
#include "egress/http_head.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::egress;

namespace {

bool printable_ascii(std::string_view s) {
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7F) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  if (auto req = parse_request_head(bytes)) {
    (void)header(req->headers, "host");
    for (bool connect : {false, true}) {
      auto t = parse_target(req->target, connect);
      if (!t) continue;
      fuzz::require(printable_ascii(t->url()), "a proxied URL is printable ASCII");
      fuzz::require(!t->host.empty(), "a target has a host");
      fuzz::require(!connect || t->port != 0, "a CONNECT target has a port");
      (void)origin_request(*req, *t);
    }
  }
  if (auto resp = parse_response_head(bytes))
    fuzz::require(resp->status >= 0 && resp->status <= 999, "a status has three digits");

  // A chunked body, fed in two pieces at a split the input chooses.
  size_t split = size ? data[0] % (size + 1) : 0;
  ChunkedDecoder chunked;
  size_t decoded = 0;
  auto sink = [&](std::string_view c) { decoded += c.size(); };
  if (chunked.feed(bytes.substr(0, split), sink)) (void)chunked.feed(bytes.substr(split), sink);
  fuzz::require(decoded <= size, "a chunked body decodes to no more than it holds");

  if (auto q = parse_dns_question(bytes)) {
    (void)dns_type_name(q->type);
    std::string reply = dns_error_reply(bytes, 2);
    auto a = parse_dns_answer(reply);
    fuzz::require(a.has_value() && (a->rcode == 2 || (a->rcode == 1 && reply.size() == 12)) &&
                      a->addresses.empty(),
                  "an error reply to a query reads back as that error (or FORMERR)");
  }
  if (auto a = parse_dns_answer(bytes))
    for (const auto& address : a->addresses)
      fuzz::require(printable_ascii(address), "an answer's address is numeric text");
  return 0;
}
