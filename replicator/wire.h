// What travels between nodes: changes, batches and positions, their JSON
// encoding, and the validation every incoming batch passes before any of it
// reaches the database. docs/protocol.md describes the format.
#ifndef ZONEMESH_REPLICATOR_WIRE_H_
#define ZONEMESH_REPLICATOR_WIRE_H_

#include <compare>
#include <cstdint>
#include <optional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "schema/key.h"
#include "schema/spec.h"
#include "schema/version.h"

namespace zonemesh {

inline constexpr int kProtocolVersion = 2;

// A place in one origin's change stream: commit round (csn) and outbox id.
// Rounds are stamped in commit order, so positions only grow.
struct Position {
  int64_t csn = 0;
  int64_t id = 0;
  auto operator<=>(const Position&) const = default;
  bool operator==(const Position&) const = default;
  bool IsZero() const { return csn == 0 && id == 0; }
  std::string ToString() const { return std::to_string(csn) + ":" + std::to_string(id); }
};

// A zone's serial clock as one origin asserted it with an SOA write:
// base (a maximum over every origin) and this origin's count of SOA writes
// to the zone. docs/replication-model.md, "Serials".
struct SerialClock {
  int64_t base = 0;
  int64_t count = 0;
  bool operator==(const SerialClock&) const = default;
};

// One captured row change.
struct Change {
  Position pos;
  const schema::TableSpec* spec = nullptr;
  char op = 'U';  // 'U': the row exists with `row` (insert or update); 'D': deleted
  std::string key;
  schema::RowImage row;        // new image for 'U', last image for 'D'
  schema::Version version;     // (hlc, origin node) of this change
  schema::VersionVector vv;    // what the writer had seen, this change included
  schema::Version epoch;       // the zone incarnation it belongs to
  // The incarnation of the row's group (RRset, metadata kind) it belongs
  // to; zero for tables without groups and for groups never replaced.
  schema::Version group_epoch;
  // The origin's database session that wrote it (0 on SQLite, whose
  // writers never overlap): changes of one session are in commit order.
  int64_t session = 0;
  // For an SOA upsert: the zone's serial clock at the origin after it.
  std::optional<SerialClock> serial;
  // Snapshot rows only: the row's concurrent states when the serving node
  // holds more than one (the shown one among them), each a change of the
  // same key, zone and set incarnations. A joining node applies them too,
  // so that its strategy later decides among the same states as the
  // serving node's.
  std::vector<Change> siblings;
};

// Concurrent states a snapshot row carries at most.
inline constexpr size_t kMaxSiblings = 64;

// A push from one node to another: changes strictly after `after`, in
// stream order. `round_complete` is false when the last commit round
// continues in the next batch.
struct Batch {
  std::string origin;
  std::string target;
  std::string fingerprint;
  Position after;
  std::vector<Change> changes;
  bool round_complete = true;
};

// Malformed input from a peer; what() says what is wrong (HTTP 400).
class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Longest text value accepted in a row. PowerDNS's widest columns hold
// 64,000 to 65,535 bytes, but SQLite does not enforce declared lengths, so a
// longer value can exist on a node; it travels, and a database that cannot
// hold it refuses that one change (recorded), not the whole stream.
inline constexpr size_t kMaxValueBytes = 1 << 20;

nlohmann::json ChangeToJson(const Change& c);
// Strict: every field present and typed, table and columns as the spec says,
// key equal to the key computed from the row. Throws WireError.
// With `snapshot_row` (rows of a join snapshot): no position, and a row
// never versioned (written before zonemesh was installed) may carry the
// zero version and an empty vector.
Change ChangeFromJson(const nlohmann::json& j, bool snapshot_row = false);

std::string EncodeBatch(const Batch& b);
// Parses and validates a whole batch: version, ids, positions strictly
// increasing and after `after`, every change written by `origin`. Throws
// WireError naming the first problem (with the change's index).
Batch DecodeBatch(std::string_view body);

// Turns a capture trigger's JSON payload into a typed row image. Lenient
// with representation (0/1, "t"/"f" for booleans, numeric text for integers,
// as the databases produce them). A value that cannot be read as its
// column's type becomes NULL and is reported through `problems`.
schema::RowImage RowImageFromPayload(const schema::TableSpec& spec, const nlohmann::json& payload,
                                     std::vector<std::string>* problems);

// Serializes JSON without ever throwing: invalid UTF-8 from local data
// becomes U+FFFD.
std::string JsonText(const nlohmann::json& j);

// Replaces each invalid UTF-8 sequence of `text` with U+FFFD. Returns true
// when something was replaced.
bool SanitizeUtf8(std::string* text);

// Row images as JSON objects keyed by column (conflict log, dumps).
nlohmann::json RowImageToJson(const schema::TableSpec& spec, const schema::RowImage& row);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_WIRE_H_
