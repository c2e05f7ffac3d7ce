// Writes to the PowerDNS tables the way PowerDNS and its tools make them,
// through plain SQL on any dialect: zone creation with its SOA in one
// transaction (pdnsutil create-zone), RRset replacement as delete + insert
// (the HTTP API), metadata as delete + insert per kind (setDomainMetadata),
// zone deletion child tables first (deleteDomain).
#ifndef ZONEMESH_TESTS_SUPPORT_PDNS_WRITES_H_
#define ZONEMESH_TESTS_SUPPORT_PDNS_WRITES_H_

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "db/connection.h"

namespace zonemesh::testing {

class PdnsWriter {
 public:
  explicit PdnsWriter(db::Connection& conn) : c_(conn) {}

  // A write to a zone that does not exist (any more).
  struct NoSuchZone : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  std::optional<int64_t> ZoneId(const std::string& zone);

  // Creates the zone and its SOA in one transaction.
  void CreateZone(const std::string& zone, int64_t serial = 1);
  // Deletes the zone's records, metadata, keys, comments, then the zone.
  void DeleteZone(const std::string& zone);
  // Replaces every record of (name, type) with `contents`, one transaction.
  void ReplaceRRset(const std::string& zone, const std::string& name, const std::string& type,
                    const std::vector<std::string>& contents, int64_t ttl = 300);
  void AddRecord(const std::string& zone, const std::string& name, const std::string& type,
                 const std::string& content, int64_t ttl = 300);
  void DeleteRecord(const std::string& zone, const std::string& name, const std::string& type,
                    const std::string& content);
  void SetTtl(const std::string& zone, const std::string& name, const std::string& type,
              int64_t ttl);
  void SetSoaSerial(const std::string& zone, int64_t serial);
  void SetMetadata(const std::string& zone, const std::string& kind,
                   const std::vector<std::string>& values);
  void AddComment(const std::string& zone, const std::string& name, const std::string& type,
                  const std::string& comment, int64_t modified_at);
  void AddCryptoKey(const std::string& zone, const std::string& content, bool active);
  void AddTsigKey(const std::string& name, const std::string& algorithm, const std::string& secret);
  void DeleteTsigKey(const std::string& name);
  void AddSupermaster(const std::string& ip, const std::string& nameserver,
                      const std::string& account);

  int64_t Count(const std::string& table);
  int64_t CountRecords(const std::string& zone);

 private:
  int64_t RequireZone(const std::string& zone);
  db::Connection& c_;
};

std::string SoaContent(const std::string& zone, int64_t serial);

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_PDNS_WRITES_H_
