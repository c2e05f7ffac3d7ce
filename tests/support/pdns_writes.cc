#include "tests/support/pdns_writes.h"

#include <stdexcept>

namespace zonemesh::testing {

using db::Value;

std::string SoaContent(const std::string& zone, int64_t serial) {
  return "ns1." + zone + " hostmaster." + zone + " " + std::to_string(serial) +
         " 10800 3600 604800 3600";
}

std::optional<int64_t> PdnsWriter::ZoneId(const std::string& zone) {
  auto rows = c_.Query("SELECT id FROM domains WHERE name = ?", {zone});
  if (rows.empty()) return std::nullopt;
  return rows[0][0].AsInt();
}

int64_t PdnsWriter::RequireZone(const std::string& zone) {
  auto id = ZoneId(zone);
  if (!id) throw NoSuchZone("test writer: no zone " + zone);
  return *id;
}

void PdnsWriter::CreateZone(const std::string& zone, int64_t serial) {
  db::Transaction tx(c_);
  c_.Execute("INSERT INTO domains (name, type) VALUES (?, ?)", {zone, "NATIVE"});
  int64_t id = RequireZone(zone);
  c_.Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
      "VALUES (?, ?, 'SOA', ?, 3600, 0, ?, ?)",
      {id, zone, SoaContent(zone, serial), Value(false), Value(true)});
  c_.Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
      "VALUES (?, ?, 'NS', ?, 3600, 0, ?, ?)",
      {id, zone, "ns1." + zone, Value(false), Value(true)});
  tx.Commit();
}

void PdnsWriter::DeleteZone(const std::string& zone) {
  db::Transaction tx(c_);
  int64_t id = RequireZone(zone);
  for (const char* t : {"records", "domainmetadata", "cryptokeys", "comments"}) {
    c_.Execute(std::string("DELETE FROM ") + t + " WHERE domain_id = ?", {id});
  }
  c_.Execute("DELETE FROM domains WHERE id = ?", {id});
  tx.Commit();
}

void PdnsWriter::ReplaceRRset(const std::string& zone, const std::string& name,
                              const std::string& type, const std::vector<std::string>& contents,
                              int64_t ttl) {
  db::Transaction tx(c_);
  int64_t id = RequireZone(zone);
  c_.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = ?", {id, name, type});
  for (const std::string& content : contents) {
    c_.Execute(
        "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
        "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        {id, name, type, content, ttl, Value(false), Value(true)});
  }
  tx.Commit();
}

void PdnsWriter::AddRecord(const std::string& zone, const std::string& name,
                           const std::string& type, const std::string& content, int64_t ttl) {
  int64_t id = RequireZone(zone);
  c_.Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
      "VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
      {id, name, type, content, ttl, Value(false), Value(true)});
}

void PdnsWriter::DeleteRecord(const std::string& zone, const std::string& name,
                              const std::string& type, const std::string& content) {
  int64_t id = RequireZone(zone);
  c_.Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = ? AND content = ?",
             {id, name, type, content});
}

void PdnsWriter::SetTtl(const std::string& zone, const std::string& name, const std::string& type,
                        int64_t ttl) {
  int64_t id = RequireZone(zone);
  c_.Execute("UPDATE records SET ttl = ? WHERE domain_id = ? AND name = ? AND type = ?",
             {ttl, id, name, type});
}

void PdnsWriter::SetSoaSerial(const std::string& zone, int64_t serial) {
  int64_t id = RequireZone(zone);
  c_.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND type = 'SOA'",
             {SoaContent(zone, serial), id});
}

void PdnsWriter::SetMetadata(const std::string& zone, const std::string& kind,
                             const std::vector<std::string>& values) {
  db::Transaction tx(c_);
  int64_t id = RequireZone(zone);
  c_.Execute("DELETE FROM domainmetadata WHERE domain_id = ? AND kind = ?", {id, kind});
  for (const std::string& v : values) {
    c_.Execute("INSERT INTO domainmetadata (domain_id, kind, content) VALUES (?, ?, ?)",
               {id, kind, v});
  }
  tx.Commit();
}

void PdnsWriter::AddComment(const std::string& zone, const std::string& name,
                            const std::string& type, const std::string& comment,
                            int64_t modified_at) {
  int64_t id = RequireZone(zone);
  c_.Execute(
      "INSERT INTO comments (domain_id, name, type, modified_at, account, comment) "
      "VALUES (?, ?, ?, ?, ?, ?)",
      {id, name, type, modified_at, "admin", comment});
}

void PdnsWriter::AddCryptoKey(const std::string& zone, const std::string& content, bool active) {
  int64_t id = RequireZone(zone);
  c_.Execute(
      "INSERT INTO cryptokeys (domain_id, flags, active, published, content) VALUES (?, ?, ?, ?, ?)",
      {id, int64_t{257}, Value(active), Value(true), content});
}

void PdnsWriter::AddTsigKey(const std::string& name, const std::string& algorithm,
                            const std::string& secret) {
  c_.Execute("INSERT INTO tsigkeys (name, algorithm, secret) VALUES (?, ?, ?)",
             {name, algorithm, secret});
}

void PdnsWriter::DeleteTsigKey(const std::string& name) {
  c_.Execute("DELETE FROM tsigkeys WHERE name = ?", {name});
}

void PdnsWriter::AddSupermaster(const std::string& ip, const std::string& nameserver,
                                const std::string& account) {
  c_.Execute("INSERT INTO supermasters (ip, nameserver, account) VALUES (?, ?, ?)",
             {ip, nameserver, account});
}

int64_t PdnsWriter::Count(const std::string& table) {
  return c_.Query("SELECT COUNT(*) FROM " + table)[0][0].AsInt();
}

int64_t PdnsWriter::CountRecords(const std::string& zone) {
  auto id = ZoneId(zone);
  if (!id) return 0;
  return c_.Query("SELECT COUNT(*) FROM records WHERE domain_id = ?", {*id})[0][0].AsInt();
}

}  // namespace zonemesh::testing
