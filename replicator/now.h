// Wall-clock time in microseconds since the epoch: the unit of row
// versions (hybrid logical clocks) and of every timestamp zonemesh stores
// or reports.
#ifndef ZONEMESH_REPLICATOR_NOW_H_
#define ZONEMESH_REPLICATOR_NOW_H_

#include <chrono>
#include <cstdint>

namespace zonemesh {

inline int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_NOW_H_
