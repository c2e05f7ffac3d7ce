#include "replicator/local_round.h"

#include "schema/spec.h"

namespace zonemesh {

namespace {
// Local upserts checked after one round at most (a bulk round during a
// catch-up makes everything a suspect for a while).
constexpr size_t kMaxSuspectChanges = 10000;
}  // namespace

std::set<std::string> FinishLocalRound(Applier& applier, Outbox& outbox, int64_t before_csn,
                                       const std::set<std::string>& clock_zones) {
  std::set<std::string> changed = applier.PublishSerials(clock_zones);
  // Every local upsert into an RRset or metadata kind may have ended a set
  // incarnation (a replace) or been written into one that had just ended:
  // local writers race each other as much as they race the applier.
  const bool suspects = applier.HasRaceSuspects();
  std::set<std::pair<std::string, std::string>> raced_keys;  // (table, key), asked once each
  std::vector<Change> upserts = outbox.UpsertsAfter(
      before_csn,
      [&](const std::string& table, const std::string& key) {
        const bool raced = suspects && applier.IsRaceSuspect(table, key);
        if (raced) raced_keys.insert({table, key});
        const schema::TableSpec* spec = schema::FindTable(table);
        return raced || (spec && spec->is_grouped());
      },
      kMaxSuspectChanges);
  if (!raced_keys.empty()) {
    std::vector<Change> raced;
    for (const Change& c : upserts) {
      if (raced_keys.count({c.spec->name, c.key})) raced.push_back(c);
    }
    if (!raced.empty()) applier.RemoveStaleDuplicates(raced, &changed);
  }
  if (!upserts.empty()) applier.RemoveRowsOfEndedGroups(upserts, &changed);
  return changed;
}

}  // namespace zonemesh
