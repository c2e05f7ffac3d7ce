#include "schema/version.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace zonemesh::schema {

bool IsValidNodeId(const std::string& id) {
  if (id.empty() || id.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(id[0])) return false;
  for (char c : id) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

VersionVector VersionVector::FromJson(const std::string& text) {
  VersionVector vv;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument("version vector is not JSON: " + std::string(e.what()));
  }
  if (!j.is_object()) throw std::invalid_argument("version vector is not an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer()) {
      throw std::invalid_argument("version vector entry '" + it.key() + "' is not an integer");
    }
    vv.entries_[it.key()] = it.value().get<int64_t>();
  }
  return vv;
}

std::string VersionVector::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [node, hlc] : entries_) j[node] = hlc;
  return j.dump();
}

int64_t VersionVector::Get(const std::string& node) const {
  auto it = entries_.find(node);
  return it == entries_.end() ? 0 : it->second;
}

VersionVector::Order VersionVector::Compare(const VersionVector& other) const {
  bool less = false, greater = false;
  for (const auto& [node, hlc] : entries_) {
    int64_t o = other.Get(node);
    if (hlc < o) less = true;
    if (hlc > o) greater = true;
  }
  for (const auto& [node, hlc] : other.entries_) {
    if (!entries_.count(node) && hlc > 0) less = true;
  }
  if (less && greater) return Order::kConcurrent;
  if (less) return Order::kBefore;
  if (greater) return Order::kAfter;
  return Order::kEqual;
}

VersionVector VersionVector::Join(const VersionVector& other) const {
  VersionVector out = *this;
  for (const auto& [node, hlc] : other.entries_) {
    if (hlc > out.Get(node)) out.entries_[node] = hlc;
  }
  return out;
}

int64_t VersionVector::MaxHlc() const {
  int64_t m = 0;
  for (const auto& [node, hlc] : entries_) m = std::max(m, hlc);
  return m;
}

}  // namespace zonemesh::schema
