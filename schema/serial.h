// Zone serials (docs/replication-model.md, "Serials").
//
// Every node serves the same SOA serial for a zone once converged, the
// serial a node serves never decreases, and every change a node makes or
// applies raises it. The served serial is a function of the zone's
// replicated history, a zone clock:
//
//   serial = base + sum over origins of (explicit + implicit counts)
//
// - explicit[o] counts the SOA writes made on origin o (a G-counter entry);
// - implicit[o] counts o's commit rounds that changed the zone's content
//   without an SOA write after the change (derived from the round itself,
//   identically on the origin and on every receiver);
// - base is a maximum over every origin's assertions: an SOA write of
//   serial S, with the clock at value V and count sum C before it, moves the
//   zone to target T = S when S is ahead of V under RFC 1982 arithmetic
//   (V + 1 otherwise: a served serial never goes back) and asserts
//   base >= T - (C + 1), so that the writing node serves exactly T.
//
// Counts only grow and base is a maximum, so the clock is a join
// semilattice: nodes that received the same changes serve the same serial
// whatever the order, and each change (a count) raises it. The serial is the
// clock's value modulo 2^32; the clock itself never wraps.
#ifndef ZONEMESH_SCHEMA_SERIAL_H_
#define ZONEMESH_SCHEMA_SERIAL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schema/key.h"
#include "schema/spec.h"
#include "schema/version.h"

namespace zonemesh::schema {

inline constexpr int64_t kSerialModulus = int64_t{1} << 32;
inline constexpr int64_t kSerialHalf = int64_t{1} << 31;

// True for an SOA row of the records table.
bool IsSoaRow(const TableSpec& spec, const RowImage& row);

// The serial field of SOA content ("mname rname serial refresh retry expire
// minimum", fields separated by single spaces as PowerDNS stores them).
// nullopt when the content has no third field or it is not a number below
// 2^32.
std::optional<uint32_t> SoaSerial(const std::string& content);

// The content with its serial field replaced by `serial`. Content without
// a serial field is returned unchanged.
std::string WithSoaSerial(const std::string& content, uint32_t serial);

// The clock value an SOA write of `written` moves a zone to, from clock
// value `current` (nullopt: the zone has no clock yet, the written serial is
// taken as it is). RFC 1982: `written` is ahead when it is 1 to 2^31 - 1
// past `current` modulo 2^32.
int64_t SerialTarget(std::optional<int64_t> current, uint32_t written);

// The serial served for clock value `clock`.
inline uint32_t ServedSerial(int64_t clock) {
  return static_cast<uint32_t>(((clock % kSerialModulus) + kSerialModulus) % kSerialModulus);
}

// What a captured change is to a zone's serial clock.
enum class SerialRole {
  kNone,      // not zone content (zones, comments, an SOA's delete, other tables)
  kContent,   // records other than the SOA, cryptokeys, domainmetadata
  kSoaWrite,  // an SOA upsert: moves the clock itself
};
SerialRole RoleOf(const TableSpec& spec, char op, const RowImage& row);

// One change of a commit round, as the implicit count sees it.
struct RoundEntry {
  std::string zone;
  Version epoch;        // the zone incarnation it was written in
  int64_t session = 0;  // the writer's database session at the origin
  SerialRole role = SerialRole::kNone;
};

// The role of a change known by its key only (the outbox thread reads keys,
// not images).
SerialRole RoleOfKey(const TableSpec& spec, char op, const std::string& key);

// Finds the zones (each with the incarnation of its last content change)
// whose content a commit round changed without an SOA write by the same
// session after the change. Entries are added in stream order; one
// session's changes are in its commit order, so the result is the same on
// the origin and on every receiver. Each such zone's implicit count grows by
// one for the round. Memory grows with zones and sessions, not changes.
class RoundSerials {
 public:
  void Add(const RoundEntry& e);
  std::map<std::string, Version> ZonesChangedWithoutSoaWrite() const;

 private:
  struct Track {
    bool uncovered = false;
    Version epoch;
  };
  std::map<std::pair<std::string, int64_t>, Track> tracks_;
};

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_SERIAL_H_
