// Zone-by-zone digests of the canonical dump (replicator/dump.h), for
// comparing nodes: `zonemesh verify` asks each peer for its digests
// (POST /v1/digest) and compares them with its own.
#ifndef ZONEMESH_REPLICATOR_DIGEST_H_
#define ZONEMESH_REPLICATOR_DIGEST_H_

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zonemesh {

struct ZoneDigest {
  int64_t rows = 0;     // dump lines of the zone
  std::string sha256;   // over those lines, in dump order
  bool operator==(const ZoneDigest&) const = default;
};

// The zone a dump line belongs to: the name of a domains row, the zone of
// a zone table's row, "" for the tables without zones (TSIG keys,
// supermasters).
std::string ZoneOfLine(const std::string& line);

// Digests of every zone in `dump` ("" for the rows without a zone).
std::map<std::string, ZoneDigest> ZoneDigests(const std::vector<std::string>& dump);

// The lines of one zone, in dump order.
std::vector<std::string> LinesOfZone(const std::vector<std::string>& dump, const std::string& zone);

// {"zones": {zone: {"rows", "sha256"}}}, and the inverse; FromJson throws
// std::invalid_argument on a malformed document.
nlohmann::json DigestsToJson(const std::map<std::string, ZoneDigest>& digests);
std::map<std::string, ZoneDigest> DigestsFromJson(const nlohmann::json& j);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_DIGEST_H_
