// Row versions and version vectors (docs/replication-model.md, "Versions").
//
// A Version is (hlc, node): a hybrid-logical-clock value in microseconds with
// the writing node's id as tie-break, so versions are totally ordered and
// every node orders them the same way. A VersionVector holds, per node, the
// hlc of the latest write of that node a row state has incorporated; it tells
// "this change has seen that one" from "these two are concurrent".
#ifndef ZONEMESH_SCHEMA_VERSION_H_
#define ZONEMESH_SCHEMA_VERSION_H_

#include <compare>
#include <cstdint>
#include <map>
#include <string>

namespace zonemesh::schema {

// A node id: [A-Za-z0-9][A-Za-z0-9._-]*, at most 63 characters.
bool IsValidNodeId(const std::string& id);

struct Version {
  int64_t hlc = 0;
  std::string node;

  bool IsZero() const { return hlc == 0 && node.empty(); }
  auto operator<=>(const Version&) const = default;
  bool operator==(const Version&) const = default;
  std::string ToString() const { return std::to_string(hlc) + "@" + node; }
};

class VersionVector {
 public:
  enum class Order { kEqual, kBefore, kAfter, kConcurrent };

  VersionVector() = default;

  // Parses {"node": hlc, ...}. Throws std::invalid_argument on bad input.
  static VersionVector FromJson(const std::string& text);
  std::string ToJson() const;

  int64_t Get(const std::string& node) const;
  void Set(const std::string& node, int64_t hlc) { entries_[node] = hlc; }
  bool empty() const { return entries_.empty(); }
  const std::map<std::string, int64_t>& entries() const { return entries_; }

  // How *this relates to `other`: kBefore when other has seen everything
  // this has (and more), kAfter the reverse, kConcurrent when each has
  // something the other lacks.
  Order Compare(const VersionVector& other) const;

  // Pointwise maximum.
  VersionVector Join(const VersionVector& other) const;

  // The highest hlc of any entry (0 when empty).
  int64_t MaxHlc() const;

  bool operator==(const VersionVector&) const = default;

 private:
  std::map<std::string, int64_t> entries_;
};

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_VERSION_H_
