#include "runner/records/fetch_view.hpp"

#include <map>
#include <set>

#include "runner/records/html_report.hpp"

namespace lockstep::runner {
namespace {

std::string destination(const RecordJson& c) {
  std::string host = str_or(c, "host");
  std::string addr = str_or(c, "address");
  std::string where = host.empty() ? addr : host;
  if (where.find(':') != std::string::npos) where = "[" + where + "]";
  return where + ":" + std::to_string(int_or(c, "port"));
}

std::string fetch_line(const RecordJson& f) {
  std::string kind = str_or(f, "kind");
  std::string s = kind == "connect" ? "CONNECT " + destination(f)
                                    : str_or(f, "method", "GET") + " " + str_or(f, "url");
  if (!str_or(f, "refused").empty()) return s + "  refused: " + str_or(f, "refused");
  if (!str_or(f, "error").empty()) return s + "  failed: " + str_or(f, "error");
  if (kind == "http")
    s += "  " + std::to_string(int_or(f, "status")) + " " + str_or(f, "sha256") + " " +
         std::to_string(int_or(f, "body_bytes")) + " bytes";
  else
    s += "  " + std::to_string(int_or(f, "bytes_out")) + " bytes out, " +
         std::to_string(int_or(f, "bytes_in")) + " in";
  return s;
}

std::string connection_line(const RecordJson& c) {
  std::string s = str_or(c, "proto") + " " + destination(c);
  if (!str_or(c, "host").empty()) s += " (" + str_or(c, "address") + ")";
  if (!str_or(c, "refused").empty()) return s + "  refused: " + str_or(c, "refused");
  return s + "  " + std::to_string(int_or(c, "bytes_out")) + " bytes out, " +
         std::to_string(int_or(c, "bytes_in")) + " in";
}

const RecordJson& list(const RecordJson& job, const char* key) {
  return member(member(job, "egress"), key);
}

}  // namespace

std::vector<std::string> fetch_lines(const RecordJson& job) {
  std::vector<std::string> out;
  for (const auto& f : list(job, "fetches")) out.push_back("fetch " + fetch_line(f));
  for (const auto& c : list(job, "connections")) out.push_back("connection " + connection_line(c));
  size_t lookups = list(job, "dns").is_array() ? list(job, "dns").size() : 0;
  if (member(job, "egress").is_object())
    out.push_back(std::to_string(lookups) + (lookups == 1 ? " DNS lookup" : " DNS lookups"));
  return out;
}

std::string render_fetches_html(const RecordJson& job) {
  if (!member(job, "egress").is_object()) return "";
  std::string out =
      "<h4>Network</h4>\n<table class=\"artifacts\"><tr><th>what</th><th>result</th></tr>\n";
  auto row = [&](const std::string& what, const std::string& result) {
    out += "<tr><td class=\"mono\">" + html_escape(what) + "</td><td class=\"mono\">" +
           html_escape(result) + "</td></tr>\n";
  };
  for (const auto& f : list(job, "fetches")) {
    std::string line = fetch_line(f);
    auto sep = line.find("  ");
    row(line.substr(0, sep), sep == std::string::npos ? "" : line.substr(sep + 2));
  }
  for (const auto& c : list(job, "connections")) {
    std::string line = connection_line(c);
    auto sep = line.find("  ");
    row(line.substr(0, sep), sep == std::string::npos ? "" : line.substr(sep + 2));
  }
  for (const auto& d : list(job, "dns")) {
    std::string answers;
    for (const auto& a : member(d, "answers"))
      if (a.is_string()) answers += (answers.empty() ? "" : " ") + a.get<std::string>();
    row("DNS " + str_or(d, "type") + " " + str_or(d, "name"),
        str_or(d, "rcode") + (answers.empty() ? "" : " " + answers));
  }
  return out + "</table>\n";
}

void diff_fetches(const std::string& who, const RecordJson& a, const RecordJson& b,
                  std::vector<std::string>& out) {
  if (!member(a, "egress").is_object() && !member(b, "egress").is_object()) return;
  // Plain HTTP by URL: what came back.
  auto http = [](const RecordJson& job) {
    std::map<std::string, const RecordJson*> m;
    for (const auto& f : list(job, "fetches"))
      if (str_or(f, "kind") == "http") m.emplace(str_or(f, "url"), &f);
    return m;
  };
  auto ha = http(a), hb = http(b);
  for (const auto& [url, fa] : ha) {
    auto it = hb.find(url);
    if (it == hb.end()) {
      out.push_back(who + ": fetch " + url + ": only in A");
      continue;
    }
    const RecordJson* fb = it->second;
    if (int_or(*fa, "status") != int_or(*fb, "status"))
      out.push_back(who + ": fetch " + url + ": status " + std::to_string(int_or(*fa, "status")) +
                    " -> " + std::to_string(int_or(*fb, "status")));
    if (str_or(*fa, "sha256") != str_or(*fb, "sha256"))
      out.push_back(who + ": fetch " + url + ": sha256 " + str_or(*fa, "sha256") + " -> " +
                    str_or(*fb, "sha256"));
  }
  for (const auto& [url, fb] : hb)
    if (!ha.count(url)) out.push_back(who + ": fetch " + url + ": only in B");
  // Everything else by destination: where the job went, and refusals.
  auto dests = [](const RecordJson& job) {
    std::set<std::string> s;
    for (const auto& f : list(job, "fetches"))
      if (str_or(f, "kind") == "connect")
        s.insert("CONNECT " + destination(f) + (str_or(f, "refused").empty() ? "" : " (refused)"));
    for (const auto& c : list(job, "connections"))
      s.insert(str_or(c, "proto") + " " + destination(c) +
               (str_or(c, "refused").empty() ? "" : " (refused)"));
    return s;
  };
  auto da = dests(a), db = dests(b);
  for (const auto& d : da)
    if (!db.count(d)) out.push_back(who + ": connection " + d + ": only in A");
  for (const auto& d : db)
    if (!da.count(d)) out.push_back(who + ": connection " + d + ": only in B");
}

std::vector<std::string> unpinned_fetches(const RecordJson& record) {
  std::set<std::string> out;
  for (const auto& job : member(record, "jobs")) {
    for (const auto& f : list(job, "fetches")) {
      if (!str_or(f, "refused").empty() || !str_or(f, "error").empty()) continue;
      if (member(f, "pinned") == true) continue;
      out.insert(str_or(f, "kind") == "http" ? str_or(f, "url") : "CONNECT " + destination(f));
    }
    for (const auto& c : list(job, "connections"))
      if (str_or(c, "refused").empty()) out.insert(str_or(c, "proto") + " " + destination(c));
  }
  return {out.begin(), out.end()};
}

Result<std::vector<pipeline::LockedFetch>> pinned_fetches(const RecordJson& record) {
  std::map<std::string, pipeline::LockedFetch> by_url;
  for (const auto& job : member(record, "jobs")) {
    for (const auto& f : list(job, "fetches")) {
      if (str_or(f, "kind") != "http" || int_or(f, "status") != 200 ||
          str_or(f, "sha256").empty() || !str_or(f, "refused").empty())
        continue;
      std::string url = str_or(f, "url");
      auto& pin = by_url[url];
      if (!pin.url.empty() && pin.sha256 != str_or(f, "sha256"))
        return fail("fetch " + url + " came with different bytes in one run (" + pin.sha256 +
                        " and " + str_or(f, "sha256") + "): it cannot be pinned",
                    ErrorKind::kUsage);
      pin.url = url;
      pin.sha256 = str_or(f, "sha256");
      pin.jobs.push_back(str_or(job, "name"));
    }
  }
  std::vector<pipeline::LockedFetch> out;
  for (auto& [url, pin] : by_url) out.push_back(std::move(pin));
  return out;
}

}  // namespace lockstep::runner
