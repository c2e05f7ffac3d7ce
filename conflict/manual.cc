// manual: the local row stays and the incoming change is parked in the
// conflict log for an operator (`zonemesh conflicts resolve ID --take
// local|remote`). Until then nodes may disagree on that row; the resolution
// is a new change that has seen both sides, so it wins everywhere.
#include "conflict/strategy.h"

namespace zonemesh::conflict {
namespace {

class Manual final : public Strategy {
 public:
  std::string Name() const override { return "manual"; }
  Decision Resolve(const ConflictInput& in) const override {
    return {Resolution::kPark, std::nullopt,
            "kept the local row; the change from " + in.remote.version.node +
                " waits for an operator"};
  }
};

}  // namespace

std::unique_ptr<Strategy> MakeManual() { return std::make_unique<Manual>(); }

}  // namespace zonemesh::conflict
