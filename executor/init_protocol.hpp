#pragma once
// What the runner and pid 1 of a container say to each other: one-byte
// commands on the control channel, and the steps a failing init names in its
// report. Shared by the executor (executor/init.cpp, container_*.cpp) and the
// static init program (executor/init_program/), so only constants here.

namespace lockstep::executor::detail {

// Commands on the control pipe (runner -> init).
inline constexpr char kCtlTerm = 'T';      // SIGTERM every other process
inline constexpr char kCtlKill = 'K';      // SIGKILL every other process
inline constexpr char kCtlKillWait = 'W';  // SIGKILL all, reap own children, ack
inline constexpr char kAck = 'k';          // init -> runner, after kCtlKillWait

enum InitFailure {
  kInitCgroup = 100,
  kInitFds,
  kInitCgroupNs,
  kInitJoinNetns,
  kInitLoopback,
  kInitHostname,
  kInitSignals,
  kInitTrees,       // receiving the detached mounts (user namespace)
  kInitJoinUserns,  // rootless: joining the process's user namespace
  kInitClone,       // rootless: cloning the init from the intermediate
  kInitSendRoot,    // rootless: sending "/" to the runner
  kInitExec,        // exec of the init program
};

inline constexpr char kCtlTrees = 'F';  // carries descriptors
inline constexpr char kCtlGo = 'G';     // every descriptor sent

}  // namespace lockstep::executor::detail
