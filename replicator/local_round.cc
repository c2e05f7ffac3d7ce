#include "replicator/local_round.h"

namespace zonemesh {

namespace {
// Local upserts checked after one round at most (a bulk round during a
// catch-up makes everything a suspect for a while).
constexpr size_t kMaxSuspectChanges = 10000;
}  // namespace

std::set<std::string> FinishLocalRound(Applier& applier, Outbox& outbox, int64_t before_csn,
                                       const std::set<std::string>& clock_zones) {
  std::set<std::string> changed = applier.PublishSerials(clock_zones);
  if (!applier.HasRaceSuspects()) return changed;
  std::vector<Change> suspects = outbox.UpsertsAfter(
      before_csn,
      [&](const std::string& table, const std::string& key) { return applier.IsRaceSuspect(table, key); },
      kMaxSuspectChanges);
  if (suspects.empty()) return changed;
  applier.RemoveStaleDuplicates(suspects);
  applier.RemoveRowsOfEndedGroups(suspects);
  for (const Change& c : suspects) {
    if (c.row.zone) changed.insert(*c.row.zone);
  }
  return changed;
}

}  // namespace zonemesh
