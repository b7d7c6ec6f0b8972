#pragma once
// Connection-tracking events (ctnetlink) of a job's network namespace, as
// connection records: who, where, how many bytes each way, when. The kernel
// counts bytes and stamps start and end (nf_conntrack_acct and _timestamp,
// turned on in every job namespace). Parsing is pure.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::egress {

struct CtEvent {
  // kUpdate: a change of an existing connection (its TCP state); kDump: a
  // row of a table dump.
  enum Kind { kNew, kUpdate, kDestroy, kDump } kind = kNew;
  uint32_t id = 0;    // CTA_ID: the same for every event of one connection
  std::string proto;  // "tcp", "udp", "icmp", or the number
  std::string src, dst;
  uint16_t sport = 0, dport = 0;
  uint64_t bytes_out = 0, bytes_in = 0;  // original and reply direction
  uint64_t start_ns = 0, stop_ns = 0;    // wall clock, 0 when not stamped
  bool seen_reply = false, assured = false;
  int tcp_state = -1;  // CTA_PROTOINFO_TCP_STATE (TCP_CONNTRACK_*), -1 when absent
  // A TCP connection past ESTABLISHED: closing or closed.
  bool tcp_closing() const { return tcp_state >= 4 && tcp_state <= 8; }
};

// Every conntrack message in one netlink datagram (other messages skipped).
std::vector<CtEvent> parse_ct_messages(std::string_view datagram);

// The request for a dump of the table (IPCTNL_MSG_CT_GET with NLM_F_DUMP).
std::string ct_dump_request(uint32_t seq);

}  // namespace lockstep::egress
