#include "replicator/catalog_labels.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "schema/key.h"
#include "schema/spec.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

using nlohmann::json;

namespace {

// The name in DNS wire format, lower case (an empty label ends it).
std::string WireName(const std::string& zone) {
  std::string out;
  size_t start = 0;
  while (start < zone.size()) {
    size_t dot = zone.find('.', start);
    if (dot == std::string::npos) dot = zone.size();
    std::string label = zone.substr(start, dot - start);
    if (!label.empty()) {
      out += static_cast<char>(std::min<size_t>(label.size(), 63));
      for (char c : label.substr(0, 63)) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    start = dot + 1;
  }
  return out + '\0';
}

std::string Base32Hex(const unsigned char* data, size_t len) {
  static const char* kAlphabet = "0123456789abcdefghijklmnopqrstuv";
  std::string out;
  uint64_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < len; ++i) {
    buffer = (buffer << 8) | data[i];
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 0x1f];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 0x1f];
  return out;
}

// The member's pinned label, or "" when its options set none.
std::string PinnedLabel(const json& options) {
  if (!options.is_object() || !options.contains("producer")) return "";
  const json& p = options["producer"];
  if (!p.is_object() || !p.contains("unique") || !p["unique"].is_string()) return "";
  return p["unique"].get<std::string>();
}

}  // namespace

std::string CatalogMemberLabel(const std::string& zone, const schema::Version& epoch) {
  const std::string data = WireName(zone) + std::to_string(epoch.hlc) + "@" + epoch.node;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("SHA-1 failed");
  }
  return Base32Hex(md, len);
}

int64_t PinCatalogLabels(db::Connection& conn) {
  schema::SqlDialect d(conn.dialect());
  const std::string name = d.ToText("name", schema::ColumnType::kText);
  const std::string options = d.ToText("options", schema::ColumnType::kText);
  auto members = conn.Query("SELECT id, " + name + ", " + options +
                            " FROM domains WHERE catalog IS NOT NULL AND catalog <> ''");
  int64_t pinned = 0;
  bool begun = false;
  try {
    for (const db::Row& m : members) {
      const std::optional<std::string> text = m[2].AsOptText();
      json opts = text && !text->empty() ? json::parse(*text, nullptr, false) : json::object();
      if (opts.is_discarded() || !opts.is_object()) continue;  // not ours to repair
      if (!PinnedLabel(opts).empty()) continue;
      const std::string zone = m[1].AsText();
      auto e = conn.Query("SELECT epoch_hlc, epoch_node FROM zm_rowver WHERE tbl = 'domains' AND kid = ?",
                          {schema::KeyId(conn.dialect(), schema::ZoneKey(zone))});
      const schema::Version epoch = e.empty() ? schema::Version{} : schema::Version{e[0][0].AsInt(), e[0][1].AsText()};
      if (!opts.contains("producer") || !opts["producer"].is_object()) opts["producer"] = json::object();
      opts["producer"]["unique"] = CatalogMemberLabel(zone, epoch);
      if (!begun) {
        conn.Begin();
        begun = true;
      }
      // Only if nobody changed the options meanwhile.
      pinned += conn.Execute(text ? "UPDATE domains SET options = ? WHERE id = ? AND options = ?"
                                  : "UPDATE domains SET options = ? WHERE id = ? AND options IS NULL",
                             text ? db::Params{opts.dump(), m[0], *text} : db::Params{opts.dump(), m[0]});
      spdlog::info("catalog member {}: pinned its label {} (PowerDNS would derive it from the local "
                   "zone id, different on every node)",
                   zone, opts["producer"]["unique"].get<std::string>());
    }
    if (begun) conn.Commit();
  } catch (...) {
    if (begun) conn.Rollback();
    throw;
  }
  return pinned;
}

}  // namespace zonemesh
