#include "runner/records/run_record.hpp"

#include <cstdio>

#include "runner/cli/cli.hpp"
#include "runner/records/provenance.hpp"
#include "runner/records/record.hpp"
#include "runner/records/report.hpp"

namespace lockstep::runner {

int finish_run(const RunOptions& opt, const RunOutcome& run, const RecordSettings& how,
               Json* record) {
  if (record) *record = nullptr;
  if (!run.ran) return run.exit_code;
  const Masker& masker = *run.masker;
  RunSummary summary{run.run_id, run.facts.workflow_name, opt.workflow.string(), &run.jobs,
                     run.interrupted};
  if (!how.quiet) {
    Console console(stdout, Console::stdout_is_tty());
    print_summary(console, summary, matrix_text);
  }
  // What could not be written is reported, and the run then exits
  // kExitNotRecorded: replay and reports depend on it.
  bool unrecorded = false;
  for (const auto& [kind, file] : opt.reports) {
    auto r =
        kind == "junit" ? write_junit(file, summary, masker) : write_json(file, summary, masker);
    if (!r) {
      report_error(Error(r.error()).context("write the " + kind + " report " + file.string()));
      unrecorded = true;
    }
  }
  RecordInput rec;
  static_cast<RunFacts&>(rec) = run.facts;
  if (!how.workflow_display.empty()) rec.workflow_path = how.workflow_display;
  rec.run_id = run.run_id;
  rec.kind = how.kind;
  rec.replay_of = how.replay_of;
  rec.exit_code = run.exit_code;
  rec.interrupted = run.interrupted;
  rec.jobs = &run.jobs;
  rec.run_dir = run.run_dir;
  rec.state_dir = opt.state_dir;
  rec.verify = how.verify;
  Json built = build_record(rec);
  if (!how.write) {
    // verify records its builds together
  } else if (auto saved = save_record(opt.state_dir, run.run_dir, built); !saved) {
    report_error(std::move(saved.error()).context("write the run record of " + run.run_id));
    unrecorded = true;
  } else if (auto prov = write_provenance(built, run.run_dir / "provenance.json"); !prov) {
    report_error(std::move(prov.error()).context("write provenance"));
    unrecorded = true;
  } else if (!how.quiet) {
    std::fprintf(stderr, "lockstep: run %s recorded in %s\n", run.run_id.c_str(),
                 (run.run_dir / "record.json").c_str());
  }
  if (record) *record = std::move(built);
  if (run.interrupted) return 130;
  bool any_failed = false;
  for (const auto& r : run.jobs) {
    if (r.outcome.failed()) {
      any_failed = true;
      std::fprintf(stderr, "lockstep: error: job %s: %s\n", r.display_name.c_str(),
                   masker.mask(r.outcome.reason).c_str());
    }
    if (r.outcome.result == JobResult::kCancelled) any_failed = true;
  }
  return any_failed || run.teardown_failed ? 1 : unrecorded ? kExitNotRecorded : 0;
}

}  // namespace lockstep::runner
