#include "conflict/resolve.h"

#include <algorithm>

namespace zonemesh::conflict {

using schema::VersionVector;

namespace {

// True when `a` has seen `b`.
bool HasSeen(const State& a, const State& b) {
  const VersionVector::Order o = b.vv.Compare(a.vv);
  return o == VersionVector::Order::kBefore || o == VersionVector::Order::kEqual;
}

}  // namespace

bool AddState(std::vector<State>* states, const State& incoming) {
  for (const State& s : *states) {
    if (HasSeen(s, incoming)) return false;
  }
  states->erase(std::remove_if(states->begin(), states->end(),
                               [&](const State& s) { return HasSeen(incoming, s); }),
                states->end());
  states->push_back(incoming);
  return true;
}

Outcome Decide(const Strategy& strategy, const schema::TableSpec& spec, const std::string& key,
               std::vector<State> states) {
  std::sort(states.begin(), states.end(),
            [](const State& a, const State& b) { return a.version < b.version; });
  Outcome out;
  out.shown = states.front();
  for (size_t i = 1; i < states.size(); ++i) {
    const State& next = states[i];
    RowState local{out.shown.exists, out.shown.image ? &*out.shown.image : nullptr,
                   out.shown.version, out.shown.vv};
    RowState remote{next.exists, next.image ? &*next.image : nullptr, next.version, next.vv};
    Decision d = strategy.Resolve({spec, key, local, remote});
    out.decided = true;
    out.resolution = d.resolution;
    out.reason = d.reason;
    switch (d.resolution) {
      case Resolution::kTakeRemote:
        out.shown = next;
        out.merged = false;
        break;
      case Resolution::kMerge: {
        State m;
        m.version = std::max(out.shown.version, next.version);
        m.vv = out.shown.vv.Join(next.vv);
        m.exists = true;
        m.image = d.merged;
        out.shown = std::move(m);
        out.merged = true;
        break;
      }
      case Resolution::kKeepLocal:
      case Resolution::kPark:
        break;
    }
  }
  return out;
}

VersionVector JoinedVector(const std::vector<State>& states) {
  VersionVector vv;
  for (const State& s : states) vv = vv.Join(s.vv);
  return vv;
}

}  // namespace zonemesh::conflict
