#include "conflict/strategy.h"

#include <stdexcept>

namespace zonemesh::conflict {

bool IsKnownStrategy(const std::string& name) { return name == "latest-wins"; }

std::string KnownStrategyNames() { return "latest-wins"; }

std::unique_ptr<Strategy> MakeStrategy(const std::string& name) {
  if (name == "latest-wins") return MakeLatestWins();
  throw std::invalid_argument("unknown conflict strategy \"" + name + "\" (known: " +
                              KnownStrategyNames() + ")");
}

Policy::Policy(const std::string& default_strategy,
               const std::map<std::string, std::string>& per_table)
    : default_(MakeStrategy(default_strategy)) {
  for (const auto& [table, name] : per_table) tables_[table] = MakeStrategy(name);
}

const Strategy& Policy::For(const std::string& table) const {
  auto it = tables_.find(table);
  return it == tables_.end() ? *default_ : *it->second;
}

std::string Policy::Describe() const {
  std::string out;
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    out += spec.name + "=" + For(spec.name).Name() + ";";
  }
  return out;
}

}  // namespace zonemesh::conflict
