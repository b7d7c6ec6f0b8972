#include "common/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

namespace lockstep {

void setup_logging(Verbosity v) {
  auto logger = spdlog::stderr_logger_mt("lockstep");
  logger->set_pattern("lockstep: %l: %v");
  switch (v) {
    case Verbosity::kQuiet:
      logger->set_level(spdlog::level::err);
      break;
    case Verbosity::kNormal:
      logger->set_level(spdlog::level::warn);
      break;
    case Verbosity::kVerbose:
      logger->set_level(spdlog::level::info);
      break;
    case Verbosity::kDebug:
      logger->set_level(spdlog::level::debug);
      break;
  }
  spdlog::set_default_logger(logger);
}

}  // namespace lockstep
