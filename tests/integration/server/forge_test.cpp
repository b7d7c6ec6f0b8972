// The other ways work reaches the server and leaves it: Gitea and GitLab
// webhooks, the poller, the live log over Server-Sent Events (resumed from
// an offset) and the web UI in headless Chromium.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "common/fd.hpp"
#include "registry-mirror/http.hpp"
#include "server/crypto.hpp"
#include "tests/integration/server/server_fixture.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class ForgeTest : public ServerFixture {
 protected:
  // Another repository of the same bare repository, for `forge`.
  void add_repo(const std::string& name, const std::string& forge, int poll = 0) {
    auto r =
        run_process({LOCKSTEP_BINARY, "server", "repo", "add", name, "--forge", forge,
                     "--clone-url", (root_ / "repo.git").string(), "--webhook-secret-file",
                     (root_ / "secret").string(), "--poll", std::to_string(poll), "--db", db_url_},
                    {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  HttpReply hook(const std::string& path, const std::vector<std::string>& headers,
                 const std::string& body) {
    registry::HttpRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(port_) + path;
    req.headers = headers;
    req.headers.push_back("Content-Type: application/json");
    req.body = body;
    registry::HttpSession http;
    auto r = http.perform(req);
    if (!r) return {};
    return {r->status, r->body};
  }

  json runs_of(const std::string& repo) {
    auto r = get("/api/runs?repo=" + repo);
    json j = r.json();
    return r.status == 200 && j.is_array() ? j : json::array();
  }

  // GET `path` on a socket of our own; what arrived until `until` is in the
  // bytes read or the connection ends (10 s at most: a hang guard).
  std::string read_stream(const std::string& path, const std::string& until,
                          const std::string& extra_header = "") {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                      "Accept: text/event-stream\r\n" + extra_header + "\r\n";
    if (::write(fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return {};
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (got.find(until) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

  // Chromium headless on `url` with a profile under the test's dir, in its
  // own process group, killed after 60 s at most; the DOM it dumped.
  std::string chromium(const std::vector<std::string>& args, const std::string& url) {
    std::vector<std::string> argv = {"/usr/bin/setsid",
                                     "/usr/bin/timeout",
                                     "-s",
                                     "KILL",
                                     "60",
                                     "/usr/bin/chromium",
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--disable-dev-shm-usage",
                                     "--no-first-run",
                                     "--enable-logging=stderr",
                                     "--user-data-dir=" + (root_ / "profile").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    auto r = run_process(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0);
    // What the page's scripts said (errors included), for failure messages.
    console_.clear();
    for (size_t at = 0; (at = r.err.find("CONSOLE", at)) != std::string::npos; ++at)
      console_ += r.err.substr(at, r.err.find('\n', at) - at) + "\n";
    return r.out;
  }
  std::string console_;
};

TEST_F(ForgeTest, GiteaAndGitLabPushesAreVerifiedAndRun) {
  add_repo("g/tea", "gitea");
  add_repo("g/lab", "gitlab");
  std::string sha = commit({{".github/workflows/ci.yml", kOneJobWorkflow}});
  start_server();
  start_agent("a");
  const std::string clone = (root_ / "repo.git").string();
  std::string tea = json{{"ref", "refs/heads/main"},
                         {"before", parent_sha_},
                         {"after", sha},
                         {"repository", {{"full_name", "g/tea"}, {"clone_url", clone}}}}
                        .dump();
  // Gitea: hex HMAC-SHA256 of the body in X-Gitea-Signature (Forgejo's name too).
  EXPECT_EQ(hook("/hooks/gitea",
                 {"X-Gitea-Event: push", "X-Gitea-Delivery: t-0",
                  "X-Gitea-Signature: " + server::hmac_sha256_hex("wrong", tea)},
                 tea)
                .status,
            401);
  EXPECT_EQ(hook("/hooks/gitea", {"X-Gitea-Event: push", "X-Gitea-Delivery: t-0"}, tea).status,
            401);
  EXPECT_EQ(hook("/hooks/gitea",
                 {"X-Forgejo-Event: push", "X-Forgejo-Delivery: t-1",
                  "X-Forgejo-Signature: " + server::hmac_sha256_hex(secret_, tea)},
                 tea)
                .status,
            202);
  // GitLab: the secret itself in X-Gitlab-Token.
  std::string lab = json{{"object_kind", "push"},
                         {"ref", "refs/heads/main"},
                         {"before", parent_sha_},
                         {"after", sha},
                         {"project", {{"path_with_namespace", "g/lab"}, {"git_http_url", clone}}}}
                        .dump();
  EXPECT_EQ(hook("/hooks/gitlab",
                 {"X-Gitlab-Event: Push Hook", "X-Gitlab-Event-UUID: l-1",
                  "X-Gitlab-Token: not-the-secret"},
                 lab)
                .status,
            401);
  EXPECT_EQ(
      hook("/hooks/gitlab",
           {"X-Gitlab-Event: Push Hook", "X-Gitlab-Event-UUID: l-1", "X-Gitlab-Token: " + secret_},
           lab)
          .status,
      202);
  for (const char* repo : {"g/tea", "g/lab"}) {
    ASSERT_TRUE(eventually([&] { return runs_of(repo).size() == 1; })) << repo;
    json run = finished_run(runs_of(repo)[0].value("id", int64_t{0}));
    EXPECT_EQ(run["run"].value("status", ""), "success") << repo << ": " << run.dump();
    EXPECT_EQ(run["run"].value("sha", ""), sha);
  }
  // Refused deliveries stored nothing: one delivery per forge.
  EXPECT_EQ(count("deliveries"), 2);
}

// A GitLab merge request from a fork: the head commit is under the target
// project's refs/merge-requests/IID/head (where GitLab keeps it), the job
// runs on the merge of head into the target branch, and the repository's
// secrets are withheld as GitHub withholds them from a fork's pull request.
TEST_F(ForgeTest, AGitLabMergeRequestFromAForkRunsOnItsMergeWithoutSecrets) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  add_repo("g/lab", "gitlab");
  {
    std::ofstream(root_ / "token-value") << "fork-must-not-see\n";
    auto r = run_process({"/bin/sh", "-c",
                          std::string("exec ") + LOCKSTEP_BINARY +
                              " server secret set g/lab TOKEN --db \"$0\" < \"$1\"",
                          db_url_, (root_ / "token-value").string()},
                         {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  commit({{".github/workflows/ci.yml", R"yml(on: pull_request
jobs:
  test:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
      - run: cat base.txt feature.txt && echo "at $GITHUB_SHA"
      - run: echo "token [${{ secrets.TOKEN }}] ${{ github.event_name }} ${{ github.base_ref }}<-${{ github.head_ref }}"
)yml"},
          {"base.txt", "from base\n"}});
  std::string head = push_pull_head("from the fork\n", "refs/merge-requests/3/head");
  std::string base2 = commit({{"base.txt", "from base, later\n"}});
  import_busybox("a");
  start_server();
  start_agent("a", 1, "lockstep");
  const std::string clone = (root_ / "repo.git").string();
  std::string mr = json{{"object_kind", "merge_request"},
                        {"project", {{"path_with_namespace", "g/lab"}, {"git_http_url", clone}}},
                        {"object_attributes",
                         {{"iid", 3},
                          {"action", "open"},
                          {"target_branch", "main"},
                          {"source_branch", "feature"},
                          {"source_project_id", 99},
                          {"target_project_id", 1},
                          {"last_commit", {{"id", head}}},
                          {"source", {{"git_http_url", "http://127.0.0.1:1/fork/lab.git"}}}}}}
                       .dump();
  ASSERT_EQ(hook("/hooks/gitlab",
                 {"X-Gitlab-Event: Merge Request Hook", "X-Gitlab-Event-UUID: mr-1",
                  "X-Gitlab-Token: " + secret_},
                 mr)
                .status,
            202);
  ASSERT_TRUE(eventually([&] { return runs_of("g/lab").size() == 1; }));
  json run = finished_run(runs_of("g/lab")[0].value("id", int64_t{0}));
  ASSERT_EQ(run["jobs"].size(), 1u) << run.dump();
  json job = run["jobs"][0];
  auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1");
  EXPECT_EQ(job.value("status", ""), "success") << job.dump() << log.body;
  std::string merge = run["run"].value("sha", "");
  EXPECT_NE(merge, head);
  EXPECT_NE(merge, base2);
  EXPECT_EQ(run["run"].value("event", ""), "pull_request") << run.dump();
  EXPECT_NE(log.body.find("from base, later"), std::string::npos) << log.body;
  EXPECT_NE(log.body.find("from the fork"), std::string::npos) << log.body;
  EXPECT_NE(log.body.find("at " + merge), std::string::npos) << log.body;
  EXPECT_NE(log.body.find("token [] pull_request main<-feature"), std::string::npos) << log.body;
}

// No webhook at all: the poller sees a branch head move and runs it once,
// however many times it looks.
TEST_F(ForgeTest, ThePollerRunsEveryMovedBranchHeadOnce) {
  add_repo("p/oll", "github", 1);
  commit({{".github/workflows/ci.yml", kOneJobWorkflow}});
  start_server();
  start_agent("a");
  // The first look records the heads there are: nothing runs for them.
  ASSERT_TRUE(eventually([&] { return count("poll_heads") == 1; }));
  std::string moved = commit({{"README", "more\n"}});
  ASSERT_TRUE(eventually([&] { return runs_of("p/oll").size() == 1; }));
  EXPECT_EQ(runs_of("p/oll")[0].value("sha", ""), moved);
  EXPECT_EQ(runs_of("p/oll")[0].value("ref", ""), "refs/heads/main");
  // A branch that appears later is a push too.
  git({"checkout", "-q", "-b", "feature"});
  std::string branch = commit({{"FEATURE", "new\n"}});
  git({"push", "-q", (root_ / "repo.git").string(), "feature"});
  ASSERT_TRUE(eventually([&] { return runs_of("p/oll").size() == 2; }));
  json runs = runs_of("p/oll");
  EXPECT_EQ(runs[0].value("sha", ""), branch);  // newest first
  EXPECT_EQ(runs[0].value("ref", ""), "refs/heads/feature");
  EXPECT_EQ(finished_run(runs[0].value("id", int64_t{0}))["run"].value("status", ""), "success");
  // Three more polls change nothing.
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  EXPECT_EQ(runs_of("p/oll").size(), 2u);
}

// The live log: Server-Sent Events whose ids are offsets, resumed with
// Last-Event-ID after a reconnect, ended by `event: end`; and the job page
// in Chromium renders it, with ::group:: folding and ANSI colours.
TEST_F(ForgeTest, TheLiveLogStreamsResumesAndRendersInTheBrowser) {
  std::string sha = commit({{".github/workflows/ci.yml", R"(name: ci
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - name: first
        run: "echo line-one\nsleep 1.5\necho \e[31mline-red\e[0m"
)"}});
  start_server();
  start_agent("a");
  ASSERT_EQ(push_hook("d-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  int64_t run_id = runs()[0].value("id", int64_t{0});
  int64_t job = 0;
  ASSERT_TRUE(eventually([&] {
    json r = get("/api/runs/" + std::to_string(run_id)).json();
    if (!r.is_object() || !r.contains("jobs") || r["jobs"].empty()) return false;
    job = r["jobs"][0].value("id", int64_t{0});
    return !r["jobs"][0]["attempts"].empty();
  }));
  const std::string path = "/api/jobs/" + std::to_string(job) + "/log/stream?attempt=1";
  // Live: the first line arrives while the job still runs (the red line
  // comes 1.5 s later).
  std::string live = read_stream(path, "line-one");
  ASSERT_NE(live.find("line-one"), std::string::npos) << live;
  EXPECT_NE(live.find("text/event-stream"), std::string::npos) << live;
  EXPECT_EQ(live.find("line-red"), std::string::npos) << live;
  // The whole stream, to its end.
  std::string all = read_stream(path, "event: end");
  ASSERT_NE(all.find("event: end"), std::string::npos) << all << slurp(root_ / "server.log");
  EXPECT_NE(all.find("line-red"), std::string::npos) << all;
  // Resumed after line-one: the id of the event holding it is its offset.
  size_t at = live.find("line-one");
  size_t id = live.rfind("id: ", at);
  ASSERT_NE(id, std::string::npos) << live;
  std::string offset = live.substr(id + 4, live.find('\n', id) - id - 4);
  std::string resumed = read_stream(path, "event: end", "Last-Event-ID: " + offset + "\r\n");
  EXPECT_NE(resumed.find("line-red"), std::string::npos) << resumed;
  EXPECT_EQ(resumed.find("line-one"), std::string::npos) << resumed;
  EXPECT_EQ(finished_run(run_id)["run"].value("status", ""), "success");

  if (::access("/usr/bin/chromium", X_OK) != 0)
    GTEST_SKIP() << "needs chromium for the UI checks (apt-get install chromium)";
  const std::string base = "http://127.0.0.1:" + std::to_string(port_) + "/";
  std::string dom = chromium({"--virtual-time-budget=5000", "--dump-dom"},
                             base + "#/jobs/" + std::to_string(job));
  EXPECT_NE(dom.find("<summary>first</summary>"), std::string::npos) << console_ << dom;
  EXPECT_NE(dom.find("<span class=\"a-31\">line-red</span>"), std::string::npos) << console_ << dom;
  EXPECT_NE(dom.find("id=\"replay\""), std::string::npos) << console_ << dom;
  dom = chromium({"--virtual-time-budget=5000", "--dump-dom"},
                 base + "#/runs/" + std::to_string(run_id));
  EXPECT_NE(dom.find("class=\"job\""), std::string::npos) << console_ << dom;
  EXPECT_NE(dom.find("success"), std::string::npos) << console_ << dom;
  dom = chromium({"--virtual-time-budget=5000", "--dump-dom"}, base);
  EXPECT_NE(dom.find("o/r"), std::string::npos) << console_ << dom;
  fs::path shot = root_ / "job.png";
  chromium(
      {"--virtual-time-budget=5000", "--window-size=1200,900", "--screenshot=" + shot.string()},
      base + "#/jobs/" + std::to_string(job));
  std::error_code ec;
  EXPECT_GT(fs::file_size(shot, ec), 1000u) << ec.message();
}

// The workflow's concurrency group, as GitHub applies it: a newer push
// cancels the run in progress (cancel-in-progress), or waits as pending
// while it runs, replacing an earlier pending run.
TEST_F(ForgeTest, ConcurrencyGroupsCancelOrQueueEarlierRuns) {
  auto workflow = [](const std::string& cancel, const std::string& secs) {
    return "name: ci\non: push\nconcurrency:\n  group: ${{ github.workflow }}-${{ github.ref }}\n"
           "  cancel-in-progress: " +
           cancel +
           "\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: sleep " + secs +
           "\n";
  };
  start_server(6);  // renewals every second: a cancel reaches the agent fast
  start_agent("a", 2);
  auto push = [&](const std::string& delivery, const std::string& text) {
    std::string sha = commit({{".github/workflows/ci.yml", text}, {"DELIVERY", delivery}});
    // Counted before the webhook: the run may be planned before its answer.
    size_t before = runs().size();
    EXPECT_EQ(push_hook(delivery, sha, secret_).status, 202);
    EXPECT_TRUE(eventually([&] { return runs().size() == before + 1; }));
    return runs()[0].value("id", int64_t{0});
  };
  auto status = [&](int64_t run) {
    return get("/api/runs/" + std::to_string(run)).json()["run"].value("status", "");
  };
  auto running = [&](int64_t run) {
    json r = get("/api/runs/" + std::to_string(run)).json();
    return r.is_object() && r.contains("jobs") && !r["jobs"].empty() &&
           r["jobs"][0].value("status", "") == "running";
  };

  // cancel-in-progress: the second push cancels the first run mid-job.
  int64_t first = push("c-1", workflow("true", "30"));
  ASSERT_TRUE(eventually([&] { return running(first); }));
  int64_t second = push("c-2", workflow("true", "0.2"));
  json ended = finished_run(first);
  EXPECT_EQ(ended["run"].value("status", ""), "cancelled") << ended.dump();
  EXPECT_NE(ended["jobs"][0].value("reason", "").find("concurrency group 'ci-refs/heads/main'"),
            std::string::npos)
      << ended.dump();
  EXPECT_EQ(finished_run(second)["run"].value("status", ""), "success");

  // Without it: a pending run waits for the running one; a newer pending
  // run replaces it, never having run.
  int64_t a = push("q-1", workflow("false", "10"));
  ASSERT_TRUE(eventually([&] { return running(a); }));
  int64_t b = push("q-2", workflow("false", "0.2"));
  EXPECT_EQ(status(b), "pending");
  int64_t c = push("q-3", workflow("false", "0.2"));
  EXPECT_EQ(status(c), "pending");
  json rb = finished_run(b);
  EXPECT_EQ(rb["run"].value("status", ""), "cancelled");
  EXPECT_TRUE(rb["jobs"][0]["attempts"].empty()) << rb.dump();
  EXPECT_EQ(status(a), "running");
  json ra = finished_run(a);
  json rc = finished_run(c);
  EXPECT_EQ(ra["run"].value("status", ""), "success");
  EXPECT_EQ(rc["run"].value("status", ""), "success");
  // c's job started after a's ended.
  auto events = trace();
  int64_t a_end = 0, c_start = 0;
  int64_t a_job = ra["jobs"][0].value("id", int64_t{0}),
          c_job = rc["jobs"][0].value("id", int64_t{0});
  for (const auto& e : events) {
    if (e.job == a_job) a_end = std::max(a_end, e.ns);
    if (e.job == c_job && (c_start == 0 || e.ns < c_start)) c_start = e.ns;
  }
  EXPECT_GT(c_start, a_end);
}

}  // namespace
}  // namespace lockstep::testing
