#include "conflict/strategy.h"

#include <stdexcept>

namespace zonemesh::conflict {

namespace {

const std::vector<std::string>& Names() {
  static const std::vector<std::string> names = {"latest-wins", "priority", "soa-serial", "manual",
                                                 "custom"};
  return names;
}

}  // namespace

bool IsKnownStrategy(const std::string& name) {
  for (const std::string& n : Names()) {
    if (n == name) return true;
  }
  return false;
}

std::string KnownStrategyNames() {
  std::string out;
  for (const std::string& n : Names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::unique_ptr<Strategy> MakeStrategy(const std::string& name, const StrategyOptions& options) {
  if (name == "latest-wins") return MakeLatestWins();
  if (name == "priority") {
    if (options.priority.empty()) {
      throw std::invalid_argument("strategy \"priority\" needs \"priority\": [node ids]");
    }
    return MakePriority(options.priority);
  }
  if (name == "soa-serial") return MakeSoaSerial();
  if (name == "manual") return MakeManual();
  if (name == "custom") {
    if (options.plugin_path.empty()) {
      throw std::invalid_argument("strategy \"custom\" needs \"plugin\": \"/path/to/plugin.so\"");
    }
    return MakePlugin(options.plugin_path);
  }
  throw std::invalid_argument("unknown conflict strategy \"" + name + "\" (known: " +
                              KnownStrategyNames() + ")");
}

Policy::Policy(const std::string& default_strategy,
               const std::map<std::string, std::string>& per_table,
               const StrategyOptions& options)
    : default_(MakeStrategy(default_strategy, options)) {
  for (const auto& [table, name] : per_table) tables_[table] = MakeStrategy(name, options);
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
