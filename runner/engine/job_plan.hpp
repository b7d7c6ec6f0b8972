#pragma once
// The job plan: one job instance as a lockstep server plans it and hands it
// to an agent, which runs it with `lockstep run --plan FILE` (docs/server.md,
// "The job plan"). It names the workflow (a path in the checkout of the
// planned commit), the job and its matrix cell exactly (any JSON value, so
// cells of objects and arrays are selected too), the event the run was
// planned from, the `needs` context of the jobs it needs (run elsewhere),
// and the pins of the run: the images, actions and node runtime earlier
// jobs and attempts of the run resolved, so that every job of a run and
// every retry uses the same digests and commits whichever agent runs it.
// The server keeps more in the same object (repository, clone URL, commit,
// secret names, a pull request's merge parents); `lockstep run` reads only
// what is named here and ignores the rest.
#include <filesystem>
#include <map>
#include <string>

#include "common/error.hpp"
#include "common/json.hpp"
#include "runner/engine/run.hpp"

namespace lockstep::runner {

struct JobPlan {
  std::filesystem::path workflow;  // relative to the working directory
  std::string job;
  Json matrix = Json::object();  // the cell; {} for a job without a matrix
  std::string event = "push";
  Json event_payload = Json::object();
  GivenNeeds needs;
  std::map<std::string, std::string> image_pins;   // reference -> manifest digest
  std::map<std::string, std::string> action_pins;  // "owner/repo@ref" -> commit
  std::string runtime_pin;                         // the node runtime's digest
};

// Reads FILE; anything missing or of the wrong type is a usage error naming
// the file and the field.
Result<JobPlan> load_job_plan(const std::filesystem::path& file);

// The pins a job's record entry (record.json's jobs[]) shows it used, added
// to `pins` ({"images": {}, "actions": {}, "runtime": ""}) where it names
// no pin for that reference yet: what later jobs of the run are held to.
// Without `local_images`, images of the local store's own names
// (localhost/...) are left out: another host's store has other images under
// them (the server's pins for jobs on any agent; a replay keeps them).
void add_record_pins(const Json& job_record, Json& pins, bool local_images = true);

}  // namespace lockstep::runner
