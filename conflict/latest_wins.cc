// latest-wins: the state written by the higher version wins; versions are
// totally ordered (hlc, then node id), so every node picks the same one.
#include "conflict/strategy.h"

namespace zonemesh::conflict {
namespace {

class LatestWins final : public Strategy {
 public:
  std::string Name() const override { return "latest-wins"; }
  Decision Resolve(const ConflictInput& in) const override {
    if (in.remote.version > in.local.version) {
      return {Resolution::kTakeRemote, std::nullopt,
              "remote version " + in.remote.version.ToString() + " is newer than local " +
                  in.local.version.ToString()};
    }
    return {Resolution::kKeepLocal, std::nullopt,
            "local version " + in.local.version.ToString() + " is newer than remote " +
                in.remote.version.ToString()};
  }
};

}  // namespace

std::unique_ptr<Strategy> MakeLatestWins() { return std::make_unique<LatestWins>(); }

}  // namespace zonemesh::conflict
