// The zones' serial clocks as stored (zm_zone, zm_serial): what the applier,
// the outbox thread and snapshots read and move. The arithmetic and the
// argument why served serials converge and never go back are in
// schema/serial.h; the capture triggers move the clock for local SOA writes
// in the writer's own transaction.
//
// A clock belongs to one incarnation of its zone. Moving it for another
// incarnation first empties it (for a newer one) or does nothing (an older
// one is dead). Used by one thread at a time, on its caller's connection and
// transaction.
#ifndef ZONEMESH_REPLICATOR_ZONE_CLOCK_H_
#define ZONEMESH_REPLICATOR_ZONE_CLOCK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"
#include "replicator/wire.h"
#include "schema/version.h"

namespace zonemesh {

struct ZoneClock {
  std::string zone;
  schema::Version epoch;
  std::optional<int64_t> base;                 // nullopt: no SOA written yet
  std::map<std::string, int64_t> explicit_n;   // per origin: SOA writes
  std::map<std::string, int64_t> implicit_n;   // per origin: rounds without one
  // The clock's value; nullopt without a base.
  std::optional<int64_t> Value() const;

  nlohmann::json ToJson() const;
  // Throws WireError on malformed input.
  static ZoneClock FromJson(const nlohmann::json& j);
};

class ZoneClocks {
 public:
  explicit ZoneClocks(db::Connection& conn) : conn_(conn) {}

  // Merges an origin's assertion carried by its SOA write: base is a
  // maximum, the origin's explicit count a maximum.
  void MergeExplicit(const std::string& zone, const schema::Version& epoch,
                     const std::string& origin, const SerialClock& clock);

  // One more commit round of `origin` that changed the zone without an SOA
  // write.
  void AddImplicit(const std::string& zone, const schema::Version& epoch,
                   const std::string& origin);

  // Merges a whole clock (from a snapshot) component by component.
  void Merge(const ZoneClock& clock);

  // The zone's clock, nullopt when it has none.
  std::optional<ZoneClock> Load(const std::string& zone);

  // Every clock, zones in name order after `after`, at most `limit`.
  std::vector<ZoneClock> LoadPage(const std::string& after, int limit);

  // The zones that have a clock.
  std::vector<std::string> Zones();

  // Writes the clock's serial into the zone's SOA row when they differ.
  // REQUIRES: the session is the applier's (the write is not captured).
  // Returns true when the row changed.
  bool Publish(const std::string& zone);

  // Forgets the zone's clock (its incarnation ended).
  void Forget(const std::string& zone);

 private:
  // Makes the stored clock belong to `epoch`. Returns false when the stored
  // clock belongs to a newer incarnation (the request is for a dead one).
  bool Claim(const std::string& zone, const schema::Version& epoch);
  // Upsert of a count that keeps the greater value.
  std::string CountMax() const;

  db::Connection& conn_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_ZONE_CLOCK_H_
