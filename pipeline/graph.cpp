#include "pipeline/graph.hpp"

#include <algorithm>
#include <set>

#include "pipeline/diagnostic.hpp"

namespace lockstep::pipeline {
namespace {

SourceLoc need_loc(const Job& job, size_t i) {
  return i < job.needs_locs.size() ? job.needs_locs[i] : job.loc;
}

}  // namespace

std::ptrdiff_t job_index(const Workflow& wf, std::string_view id) {
  for (size_t i = 0; i < wf.jobs.size(); ++i) {
    if (wf.jobs[i].id == id) return static_cast<std::ptrdiff_t>(i);
  }
  return -1;
}

Result<JobGraph> build_graph(const Workflow& wf) {
  const size_t n = wf.jobs.size();
  JobGraph g;
  g.needs.resize(n);
  g.dependents.resize(n);
  std::vector<std::string_view> ids;
  for (const Job& j : wf.jobs) ids.push_back(j.id);
  for (size_t j = 0; j < n; ++j) {
    const Job& job = wf.jobs[j];
    for (size_t k = 0; k < job.needs.size(); ++k) {
      const std::string& need = job.needs[k];
      auto err = [&](std::string message) {
        return fail(workflow_error(wf.file, wf.source, need_loc(job, k), std::move(message)));
      };
      std::ptrdiff_t idx = job_index(wf, need);
      if (idx < 0) {
        return err("job '" + job.id + "' needs unknown job '" + need + "'" +
                   did_you_mean(need, ids));
      }
      size_t dep = static_cast<size_t>(idx);
      if (dep == j) return err("job '" + job.id + "' needs itself");
      if (std::find(g.needs[j].begin(), g.needs[j].end(), dep) != g.needs[j].end()) {
        return err("job '" + job.id + "' lists '" + need + "' twice in needs");
      }
      g.needs[j].push_back(dep);
      g.dependents[dep].push_back(j);
    }
  }
  for (auto& d : g.dependents) std::sort(d.begin(), d.end());

  // Kahn's algorithm, always taking the ready job declared first.
  std::vector<size_t> missing(n);
  std::set<size_t> ready;
  for (size_t j = 0; j < n; ++j) {
    missing[j] = g.needs[j].size();
    if (missing[j] == 0) ready.insert(j);
  }
  while (!ready.empty()) {
    size_t j = *ready.begin();
    ready.erase(ready.begin());
    g.order.push_back(j);
    for (size_t d : g.dependents[j]) {
      if (--missing[d] == 0) ready.insert(d);
    }
  }
  if (g.order.size() == n) return g;

  // A cycle remains among the unordered jobs: walk needs from the first of
  // them until a job repeats.
  size_t start = 0;
  while (missing[start] == 0) ++start;
  std::vector<size_t> path;
  std::vector<int> pos(n, -1);
  size_t cur = start;
  while (pos[cur] < 0) {
    pos[cur] = static_cast<int>(path.size());
    path.push_back(cur);
    for (size_t dep : g.needs[cur]) {
      if (missing[dep] != 0) {
        cur = dep;
        break;
      }
    }
  }
  // The cycle is path[pos[cur]..]; print it from its first-declared job, in
  // the direction of dependency flow (a -> b means b needs a).
  std::vector<size_t> cycle(path.begin() + pos[cur], path.end());
  std::reverse(cycle.begin(), cycle.end());
  auto first = std::min_element(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), first, cycle.end());
  std::string text;
  for (size_t j : cycle) text += wf.jobs[j].id + " -> ";
  text += wf.jobs[cycle.front()].id;
  // Point at the needs entry of the first job that closes the cycle.
  const Job& head = wf.jobs[cycle.front()];
  const size_t prev = cycle.back();
  size_t k = 0;
  while (k < head.needs.size() && head.needs[k] != wf.jobs[prev].id) ++k;
  return fail(workflow_error(wf.file, wf.source, need_loc(head, k), "dependency cycle: " + text));
}

}  // namespace lockstep::pipeline
