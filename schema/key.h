// Row images and natural keys.
//
// A logical row travels as a RowImage: its zone name (for zone children) and
// the values of the spec's shipped columns. Its identity is the canonical key
// string built from the key components. The capture triggers build the same
// string in SQL on every dialect; EncodeKey is the reference the applier uses
// to validate what peers send (tests/unit/key_test.cc checks they agree).
//
// Encoding: each component is '%' -> "%25", '|' -> "%7C" escaped, NULL is
// "%N", and components are joined with '|'. Integers are decimal text.
#ifndef ZONEMESH_SCHEMA_KEY_H_
#define ZONEMESH_SCHEMA_KEY_H_

#include <optional>
#include <string>
#include <vector>

#include "db/connection.h"
#include "schema/spec.h"

namespace zonemesh::schema {

struct RowImage {
  // The parent zone's name for children (records, ...); unset otherwise.
  std::optional<std::string> zone;
  // Aligned with TableSpec::columns; normalized to the column's type
  // (kBool as bool, kInt as int64, text as text, or NULL).
  std::vector<db::Value> values;

  bool operator==(const RowImage& o) const { return zone == o.zone && values == o.values; }
};

std::string EncodeKeyComponent(const std::optional<std::string>& component);

// The first component of an encoded key, decoded (nullopt for NULL).
std::optional<std::string> FirstKeyComponent(const std::string& key);

// Every component of an encoded key, decoded. Throws std::invalid_argument
// for a malformed key.
std::vector<std::optional<std::string>> DecodeKeyComponents(const std::string& key);

// A row image holding only what the key says (key columns and zone; other
// values NULL), enough to find or delete the row. Integer key columns are
// parsed. Throws std::invalid_argument when the key does not fit the spec.
RowImage RowImageFromKey(const TableSpec& spec, const std::string& key);

// True when the spec's singleton rule drops its columns from this row's key.
bool SingletonApplies(const TableSpec& spec, const RowImage& row);

// The key components in spec.key order (NULL for absent values and for the
// singleton-dropped columns).
std::vector<std::optional<std::string>> KeyComponents(const TableSpec& spec, const RowImage& row);

std::string EncodeKey(const TableSpec& spec, const RowImage& row);

// The key of a zone's domains row.
std::string ZoneKey(const std::string& zone_name);

// The key of the row's group (spec.group): zone, then the group columns,
// encoded like a row key. REQUIRES: spec.is_grouped().
std::string GroupKey(const TableSpec& spec, const RowImage& row);

// True for a row the spec's local_rows rule keeps on its node.
bool IsLocalRow(const TableSpec& spec, const RowImage& row);

// The indexed identity of a key in zm_rowver: the key itself on SQLite (no
// length limit), its SHA-256 in hex on PostgreSQL and MySQL, whose index
// entries cannot hold 64 KB TXT contents.
std::string KeyId(db::Dialect dialect, const std::string& key);

std::string Sha256Hex(const std::string& data);

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_KEY_H_
