// libFuzzer target for what a peer can send: the push decoder and validator
// (DecodeBatch), and the payload normalizer. Properties checked on every
// input, beyond "no crash, no sanitizer report":
//   - anything DecodeBatch accepts re-encodes to a batch that decodes to the
//     same batch (nothing accepted is lost or altered by the round trip);
//   - every accepted change's key equals the key computed from its row.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "replicator/wire.h"
#include "schema/key.h"

namespace {

bool SameChange(const zonemesh::Change& a, const zonemesh::Change& b) {
  return a.pos == b.pos && a.spec == b.spec && a.op == b.op && a.key == b.key && a.row == b.row &&
         a.version == b.version && a.vv == b.vv && a.epoch == b.epoch;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  zonemesh::Batch batch;
  try {
    batch = zonemesh::DecodeBatch(input);
  } catch (const zonemesh::WireError&) {
    // Refused with a reason: the expected outcome for garbage. The reason
    // must serialize, as the router sends it back.
    return 0;
  }
  for (const zonemesh::Change& c : batch.changes) {
    if (zonemesh::schema::EncodeKey(*c.spec, c.row) != c.key) std::abort();
  }
  zonemesh::Batch again = zonemesh::DecodeBatch(zonemesh::EncodeBatch(batch));
  if (again.origin != batch.origin || again.target != batch.target || again.after != batch.after ||
      again.round_complete != batch.round_complete || again.changes.size() != batch.changes.size()) {
    std::abort();
  }
  for (size_t i = 0; i < batch.changes.size(); ++i) {
    if (!SameChange(batch.changes[i], again.changes[i])) std::abort();
  }
  // The lenient path for local payloads must never throw on any JSON.
  nlohmann::json j = nlohmann::json::parse(input, nullptr, false);
  if (!j.is_discarded()) {
    std::vector<std::string> problems;
    for (const auto& spec : zonemesh::schema::PowerDnsTables()) {
      zonemesh::RowImageFromPayload(spec, j, &problems);
    }
  }
  return 0;
}
