// The decode kernel's timeline probe (timeline.cuh): its events and record format, shared with the benchmark
// tool that reads them (bench/timeline). Plain C++: the tool's host code and its CPU test include it.
#pragma once

#include <cstdint>

namespace etap::decoding::timeline {

// Who records: the first thread of each warpgroup (thread t belongs to role t / 128).
enum class Role : uint32_t {
  kConsumer0 = 0,  // consumer warpgroup 0 (rows-on-M: the score warpgroup)
  kConsumer1 = 1,  // consumer warpgroup 1
  kProducer = 2,   // the producer warp's lane 0 (thread 256)
};
inline constexpr int kRoles = 3;
inline constexpr uint32_t kRoleThreads = 128;  // a warpgroup

enum class Event : uint32_t {
  kEntry = 0,      // every role: after griddepcontrol.wait (kernel.cuh)
  kSegmentBegin,   // a role starts a segment (arg: the request)
  kQIssued,        // producer: the segment's Q TMA issued (after the q_empty wait)
  kBlockIssued,    // producer: a KV block's TMA issued (after its stage was free; arg: the block)
  kQLanded,        // consumer: the q_full wait returned (rows-on-M: warpgroup 0 only)
  kBlockLanded,    // consumer: a block's (first box's) wait returned
  kBlockEnd,       // consumer: this warpgroup released the block's stage (its O wgmma done)
  kEpilogueBegin,  // consumer: store of the segment begins
  kEpilogueEnd,    // consumer: its stores are issued
  kExit,           // every role: leaves the kernel
  kTableRead,    // producer: the segment's first page id is in registers (whole-block loads; arg: the block)
  kScoresDone,   // the block's S wgmmas completed (rows-on-M branch alt-blocks: arg = the block)
  kPublished,    // the block's P is in smem for the other warpgroup (alt-blocks: arg = the block)
  kOtherReady,   // rows-on-M: the other warpgroup's P of the block arrived here (arg: the block)
  kExchanged,    // transposed, Sᵀ split over d: the partial halves are exchanged
  kSoftmaxDone,  // transposed: the block's column softmax (statistics, alpha, P in registers) is done
  kCount
};

// One record: 16 bytes, one vector store.
struct Stamp {
  uint64_t global_ns;  // %globaltimer
  uint32_t clock;      // %clock of the SM
  uint32_t info;       // event << kArgBits | arg
};
static_assert(sizeof(Stamp) == 16);

inline constexpr uint32_t kArgBits = 24;
inline constexpr uint32_t kArgMask = (1u << kArgBits) - 1;
constexpr uint32_t pack_info(Event e, uint32_t arg) {
  return static_cast<uint32_t>(e) << kArgBits | (arg & kArgMask);
}
constexpr Event event_of(uint32_t info) {
  return static_cast<Event>(info >> kArgBits);
}
constexpr uint32_t arg_of(uint32_t info) {
  return info & kArgMask;
}

// Where the records go: stamps [grid.y][grid.x][kRoles][capacity]; counts [grid.y][grid.x][kRoles], the
// records each role made (written at kExit; records past capacity are counted but dropped).
struct Store {
  Stamp* stamps = nullptr;
  uint32_t* counts = nullptr;
  uint32_t capacity = 0;
};

constexpr int64_t stream_index(int64_t cta, uint32_t role) {
  return cta * kRoles + role;
}

}  // namespace etap::decoding::timeline
