#include "runner/verbs/cmd_report.hpp"

#include <cstdio>

#include "common/fs.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"
#include "runner/records/html_report.hpp"

namespace lockstep::runner {

int cmd_report(const std::vector<std::string>& args) {
  const CommandLine cl(
      "lockstep report <run|record.json> --html FILE",
      "Write a run's report as one self-contained HTML file (FILE '-' for stdout):\n"
      "header, matrix grid coloured by result, per job its environment hash, image,\n"
      "steps with their logs, and artifact digests.",
      {{"html", 0, true, false, "FILE", "write the HTML report to FILE ('-' for stdout)"}});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return usage_error(parsed.error().message());
  if (parsed->positionals.size() != 1)
    return usage_error(
        "report takes one run (usage: lockstep report <run|record.json> --html FILE)");
  auto file = parsed->get("html");
  if (!file) return usage_error("report needs --html FILE (or --html - for stdout)");
  auto rec = load_record(parsed->positionals[0], state_dir());
  if (!rec) return usage_error(rec.error().message());

  std::string html = render_html_report(*rec);
  if (*file == "-") {
    if (std::fwrite(html.data(), 1, html.size(), stdout) != html.size() || std::fflush(stdout) != 0)
      return report_error(Error::from_errno("write the report to stdout", errno));
    return 0;
  }
  auto st = write_file_atomic(*file, html);
  if (!st) return report_error(Error(st.error()).context("write report " + *file));
  std::fprintf(stderr, "report written to %s\n", file->c_str());
  return 0;
}

}  // namespace lockstep::runner
