#pragma once
// The inputs of a workflow that lockstep.lock pins, per job instance: job
// and service images (container.image, services.*.image, runs-on labels
// mapped to images) and actions/checkout repositories and refs. Shared by
// `lockstep lock` (what to resolve) and `lockstep run --frozen` (what must
// be pinned), so both see exactly the same references.
//
// Values are evaluated with the contexts known before a run: github, inputs,
// vars, matrix, strategy and runner. A value that reads anything else
// (needs, steps, env, job, secrets) is only known at run time: it is
// returned with `unlockable` set instead of a value.
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

struct CallGraph;

struct InputUse {
  // kAction: `uses: owner/repo[/path]@ref` of a step (reference
  // "owner/repo", ref the ref); actions inside composite actions are found
  // by the runner, which reads their metadata.
  enum class Kind { kImage, kCheckout, kAction };
  Kind kind = Kind::kImage;
  std::string job_id;
  std::string instance;  // the instance's display name
  // Image: the reference. Checkout: `repository:` as written ("" = the
  // workflow's own repository).
  std::string reference;
  std::string ref;         // checkout: `ref:` ("" = default branch / the run's commit)
  std::string what;        // "container", "service 'db'", "runs-on 'ubuntu-latest'", "step 2"
  std::string text;        // the unevaluated text
  std::string unlockable;  // non-empty: why it is only known at run time
};

// "image", "checkout" or "action".
const char* to_string(InputUse::Kind kind);

// The pre-run evaluation context of one instance: `base` (github, inputs,
// vars) plus matrix, strategy and runner, as the runner builds them; a
// called job's inputs are its call's.
EvalContext instance_context(const EvalContext& base, const JobInstance& instance, size_t index,
                             size_t total);

// Every input of every job of `wf`, jobs in declaration order. A job whose
// matrix reads `needs` cannot be expanded before the run: it is collected
// once, as a stand-in instance (null matrix), and its inputs that read
// `matrix` or `strategy` come back unlockable. `platforms` maps runs-on
// labels to images.
// `calls`: the reusable workflows the jobs call (workflow_call.hpp); their
// jobs' inputs are collected per calling instance, with the inputs it passes
// (a call whose inputs read needs: those reading inputs are unlockable).
Result<std::vector<InputUse>> collect_inputs(const Workflow& wf, const EvalContext& base,
                                             const std::map<std::string, std::string>& platforms,
                                             const CallGraph* calls = nullptr);

// The inputs of given instances (as expand_job made them; a stand-in for a
// matrix from needs outputs has a null matrix).
Result<std::vector<InputUse>> collect_instance_inputs(
    const std::vector<JobInstance>& instances, const EvalContext& base,
    const std::map<std::string, std::string>& platforms);

}  // namespace lockstep::pipeline
