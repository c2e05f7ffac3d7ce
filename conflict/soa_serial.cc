// soa-serial: for SOA records the higher serial wins under RFC 1982 serial
// arithmetic; every other row (and equal or incomparable serials) falls back
// to latest-wins.
//
// Within a mesh the applier shows strategies SOA images without their serial:
// a zone's serial is its serial clock (schema/serial.h), which already keeps
// every node's served serial from going backwards whatever the strategy. So
// there soa-serial decides SOA rows' other fields like latest-wins; the name
// stays for the configurations that use it.
//
// RFC 1982 comparison is not transitive when serials spread over more than
// half the 32-bit space; concurrent edits of one zone's serial never do.
#include <sstream>

#include "conflict/strategy.h"

namespace zonemesh::conflict {

bool SerialGreater(uint32_t a, uint32_t b) {
  constexpr uint32_t kHalf = 1u << 31;
  return (a < b && b - a > kHalf) || (a > b && a - b < kHalf);
}

namespace {

// The serial of a SOA row image, if the row is a SOA record.
std::optional<uint32_t> SerialOf(const schema::TableSpec& spec, const RowState& s) {
  if (!s.exists || !s.row || spec.name != "records") return std::nullopt;
  const db::Value& type = s.row->values[spec.ColumnIndex("type")];
  const db::Value& content = s.row->values[spec.ColumnIndex("content")];
  if (type.IsNull() || content.IsNull() || type.AsText() != "SOA") return std::nullopt;
  std::istringstream in(content.AsText());
  std::string mname, rname;
  uint64_t serial = 0;
  if (!(in >> mname >> rname >> serial) || serial > 0xffffffffull) return std::nullopt;
  return static_cast<uint32_t>(serial);
}

class SoaSerialStrategy final : public Strategy {
 public:
  std::string Name() const override { return "soa-serial"; }

  Decision Resolve(const ConflictInput& in) const override {
    auto l = SerialOf(in.spec, in.local), r = SerialOf(in.spec, in.remote);
    if (l && r && *l != *r && (SerialGreater(*l, *r) || SerialGreater(*r, *l))) {
      bool take = SerialGreater(*r, *l);
      return {take ? Resolution::kTakeRemote : Resolution::kKeepLocal, std::nullopt,
              "SOA serial " + std::to_string(take ? *r : *l) + " is greater than " +
                  std::to_string(take ? *l : *r)};
    }
    return MakeLatestWins()->Resolve(in);
  }
};

}  // namespace

std::unique_ptr<Strategy> MakeSoaSerial() { return std::make_unique<SoaSerialStrategy>(); }

}  // namespace zonemesh::conflict
