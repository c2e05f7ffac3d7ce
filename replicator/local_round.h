// What follows a local commit round once the outbox thread stamped it: the
// serials of the zones it changed without an SOA write go up in their SOA
// rows, and rows that met a concurrent write unseen are mended: duplicate
// copies of a key a replicated insert also wrote (Applier::HasRaceSuspects),
// and rows of RRsets and metadata kinds whose incarnation a replace ended
// without seeing them (Applier::RemoveRowsOfEndedGroups). The daemon runs
// it after every stamp; tests that stamp by hand run it too.
#ifndef ZONEMESH_REPLICATOR_LOCAL_ROUND_H_
#define ZONEMESH_REPLICATOR_LOCAL_ROUND_H_

#include <cstdint>
#include <set>
#include <string>

#include "replicator/applier.h"
#include "replicator/outbox.h"

namespace zonemesh {

// `before_csn`: the last round stamped before; `clock_zones`: the zones
// Outbox::StampRound counted. REQUIRES: the applier is not in use by
// another thread. Returns the zones whose rows changed (for the local
// PowerDNS's caches). Throws db::Error; nothing is written then, and the
// caller calls again (the daemon merges a failed round into the next one,
// and publishes every zone's serial at start), while suspects stay suspects
// for a minute.
std::set<std::string> FinishLocalRound(Applier& applier, Outbox& outbox, int64_t before_csn,
                                       const std::set<std::string>& clock_zones);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_LOCAL_ROUND_H_
