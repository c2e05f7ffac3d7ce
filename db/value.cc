#include <charconv>

#include "db/connection.h"

namespace zonemesh::db {

std::string_view DialectName(Dialect d) {
  switch (d) {
    case Dialect::kSqlite:
      return "sqlite";
    case Dialect::kPostgres:
      return "postgresql";
    case Dialect::kMysql:
      return "mysql";
  }
  return "unknown";
}

int64_t Value::AsInt() const {
  if (IsInt()) return integer();
  if (IsBool()) return boolean() ? 1 : 0;
  if (IsText()) {
    const std::string& s = text();
    int64_t out = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc() && p == s.data() + s.size()) return out;
    throw std::invalid_argument("not an integer: '" + s + "'");
  }
  throw std::invalid_argument("NULL where an integer was expected");
}

std::string Value::AsText() const {
  if (IsText()) return text();
  if (IsInt()) return std::to_string(integer());
  if (IsBool()) return boolean() ? "1" : "0";
  throw std::invalid_argument("NULL where text was expected");
}

bool Value::AsBool() const {
  if (IsBool()) return boolean();
  if (IsInt()) return integer() != 0;
  if (IsText()) {
    const std::string& s = text();
    if (s == "t" || s == "true" || s == "1" || s == "TRUE" || s == "on") return true;
    if (s == "f" || s == "false" || s == "0" || s == "FALSE" || s == "off" || s.empty())
      return false;
    throw std::invalid_argument("not a boolean: '" + s + "'");
  }
  throw std::invalid_argument("NULL where a boolean was expected");
}

}  // namespace zonemesh::db
