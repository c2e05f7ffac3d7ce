// priority: the state written by the higher-priority node wins; among nodes
// of the same rank (those not listed), the higher version wins. A total
// order on (rank, version), so any number of concurrent states converge.
#include <algorithm>

#include "conflict/strategy.h"

namespace zonemesh::conflict {
namespace {

class Priority final : public Strategy {
 public:
  explicit Priority(std::vector<std::string> order) : order_(std::move(order)) {}

  std::string Name() const override {
    std::string out = "priority(";
    for (size_t i = 0; i < order_.size(); ++i) out += (i ? "," : "") + order_[i];
    return out + ")";
  }

  Decision Resolve(const ConflictInput& in) const override {
    const size_t l = Rank(in.local.version.node), r = Rank(in.remote.version.node);
    if (l != r) {
      bool take = r < l;
      return {take ? Resolution::kTakeRemote : Resolution::kKeepLocal, std::nullopt,
              (take ? in.remote : in.local).version.node + " has priority over " +
                  (take ? in.local : in.remote).version.node};
    }
    bool take = in.remote.version > in.local.version;
    return {take ? Resolution::kTakeRemote : Resolution::kKeepLocal, std::nullopt,
            "same priority; " + std::string(take ? "remote" : "local") + " version is newer"};
  }

 private:
  size_t Rank(const std::string& node) const {
    return static_cast<size_t>(std::find(order_.begin(), order_.end(), node) - order_.begin());
  }
  const std::vector<std::string> order_;
};

}  // namespace

std::unique_ptr<Strategy> MakePriority(std::vector<std::string> order) {
  return std::make_unique<Priority>(std::move(order));
}

}  // namespace zonemesh::conflict
