// The wire format (replicator/wire.h): batches built from real changes
// survive EncodeBatch/DecodeBatch unchanged, and DecodeBatch refuses every
// malformed or inconsistent batch with a WireError saying what is wrong,
// before any of it could reach a database. Also the lenient reading of
// capture-trigger payloads (RowImageFromPayload).
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "replicator/wire.h"
#include "schema/key.h"
#include "schema/spec.h"

namespace zonemesh {
namespace {

using db::Value;
using nlohmann::json;
using schema::RowImage;
using schema::TableSpec;
using schema::Version;
using schema::VersionVector;

constexpr int64_t kT0 = 1700000000000000;  // µs

const TableSpec& Spec(const std::string& table) {
  const TableSpec* spec = schema::FindTable(table);
  if (!spec) throw std::logic_error("no spec for " + table);
  return *spec;
}

RowImage Row(const std::string& table, std::optional<std::string> zone,
             const std::map<std::string, Value>& values) {
  const TableSpec& spec = Spec(table);
  RowImage row;
  row.zone = std::move(zone);
  row.values.resize(spec.columns.size());
  for (const auto& [column, value] : values) row.values[spec.ColumnIndex(column)] = value;
  return row;
}

// A change as the origin's outbox would produce it: key computed from the
// row, vv containing its own version.
Change MakeChange(Position pos, const std::string& table, char op, RowImage row, int64_t hlc,
                  const std::string& node = "ns1", Version epoch = {}) {
  Change c;
  c.pos = pos;
  c.spec = &Spec(table);
  c.op = op;
  c.row = std::move(row);
  c.key = schema::EncodeKey(*c.spec, c.row);
  c.version = {hlc, node};
  c.vv.Set(node, hlc);
  c.epoch = std::move(epoch);
  return c;
}

RowImage Domain(const std::string& name) {
  return Row("domains", std::nullopt, {{"name", name}, {"type", "NATIVE"}});
}

RowImage Record(const std::string& zone, const std::string& name, const std::string& type,
                const std::string& content) {
  return Row("records", zone,
             {{"name", name}, {"type", type}, {"content", content}, {"ttl", int64_t{3600}},
              {"prio", int64_t{0}}, {"disabled", false}, {"auth", true}});
}

// A batch of every table and column type, NULLs, quotes, unicode, a zone
// delete, and several commit rounds.
Batch RichBatch() {
  Batch b;
  b.origin = "ns1";
  b.target = "ns2";
  b.fingerprint = "3f2a-\"fp\"";
  b.after = {3, 10};
  b.round_complete = false;

  b.changes.push_back(MakeChange({4, 11}, "domains", 'U',
                                 Row("domains", std::nullopt,
                                     {{"name", "example.com"}, {"master", Value()},
                                      {"type", "MASTER"}, {"account", "\"quoted\" \\ acct"},
                                      {"options", "{\"k\": [1, 2]}"}, {"catalog", Value()}}),
                                 kT0 + 1));
  Change rec = MakeChange(
      {4, 12}, "records", 'U',
      Row("records", "example.com",
          {{"name", "www.example.com"}, {"type", "TXT"},
           {"content", "\"v=1 a|b 100% gr\xc3\xbc\xc3\x9f\x65 \xe6\x97\xa5 \xf0\x9f\x98\x80\""},
           {"ttl", int64_t{86400}}, {"prio", Value()}, {"disabled", true},
           {"ordername", Value()}, {"auth", false}}),
      kT0 + 2, "ns1", {kT0 - 50, "ns3"});
  rec.vv.Set("ns3", kT0 - 50);
  rec.vv.Set("ns2", 7);
  b.changes.push_back(rec);
  b.changes.push_back(MakeChange({4, 15}, "records", 'U',
                                 Record("example.com", "example.com", "SOA", "a. b. 1 2 3 4 5"),
                                 kT0 + 3));
  b.changes.push_back(MakeChange({5, 13}, "comments", 'U',
                                 Row("comments", "example.com",
                                     {{"name", "www.example.com"}, {"type", "A"},
                                      {"modified_at", int64_t{-42}}, {"account", Value()},
                                      {"comment", "line1\nline2\t\"x\""}}),
                                 kT0 + 4));
  b.changes.push_back(MakeChange({5, 16}, "cryptokeys", 'D',
                                 Row("cryptokeys", "example.com",
                                     {{"content", "key"}, {"flags", int64_t{257}},
                                      {"active", false}, {"published", Value()}}),
                                 kT0 + 5));
  b.changes.push_back(MakeChange({6, 17}, "tsigkeys", 'U',
                                 Row("tsigkeys", std::nullopt,
                                     {{"name", "xfr"}, {"algorithm", "hmac-sha256"},
                                      {"secret", "c2VjcmV0"}}),
                                 kT0 + 6));
  b.changes.push_back(MakeChange({6, 18}, "supermasters", 'U',
                                 Row("supermasters", std::nullopt,
                                     {{"ip", "2001:db8::1"}, {"nameserver", "ns.example.net"},
                                      {"account", ""}}),
                                 kT0 + 7));
  b.changes.push_back(MakeChange({6, 19}, "domainmetadata", 'U',
                                 Row("domainmetadata", "example.com",
                                     {{"kind", "SOA-EDIT-API"}, {"content", "DEFAULT"}}),
                                 kT0 + 8));
  b.changes.push_back(MakeChange({7, 20}, "domains", 'D', Domain("old.example"), kT0 + 9, "ns1",
                                 {kT0 + 9, "ns1"}));
  return b;
}

void ExpectSameChange(const Change& a, const Change& b) {
  EXPECT_EQ(a.pos, b.pos);
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.op, b.op);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.row.zone, b.row.zone);
  ASSERT_EQ(a.row.values.size(), b.row.values.size());
  for (size_t i = 0; i < a.row.values.size(); ++i) {
    EXPECT_EQ(a.row.values[i], b.row.values[i]) << a.spec->name << "." << a.spec->columns[i].name;
  }
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.vv, b.vv);
  EXPECT_EQ(a.epoch, b.epoch);
}

void ExpectSameBatch(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.origin, b.origin);
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.fingerprint, b.fingerprint);
  EXPECT_EQ(a.after, b.after);
  EXPECT_EQ(a.round_complete, b.round_complete);
  ASSERT_EQ(a.changes.size(), b.changes.size());
  for (size_t i = 0; i < a.changes.size(); ++i) {
    SCOPED_TRACE("change " + std::to_string(i));
    ExpectSameChange(a.changes[i], b.changes[i]);
  }
}

// The WireError message DecodeBatch gives for `body`.
std::string RejectionOf(const std::string& body) {
  try {
    DecodeBatch(body);
  } catch (const WireError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("UNEXPECTED EXCEPTION TYPE: ") + e.what();
  }
  return "ACCEPTED";
}

// Asserts DecodeBatch refuses `j` with a message containing `reason`.
void ExpectRejected(const json& j, const std::string& reason) {
  std::string msg = RejectionOf(j.dump());
  EXPECT_NE(msg.find(reason), std::string::npos)
      << "expected a WireError mentioning \"" << reason << "\", got: " << msg;
}

// A valid two-change batch as JSON, for tampering with.
json ValidJson() {
  Batch b;
  b.origin = "ns1";
  b.target = "ns2";
  b.fingerprint = "F";
  b.after = {1, 5};
  b.changes.push_back(MakeChange({2, 6}, "domains", 'U', Domain("example.com"), kT0 + 1));
  b.changes.push_back(MakeChange({2, 7}, "records", 'U',
                                 Record("example.com", "www.example.com", "A", "192.0.2.1"),
                                 kT0 + 2));
  return json::parse(EncodeBatch(b));
}

// Index of a column of `table` in a change's "v" array.
size_t Col(const std::string& table, const std::string& column) {
  return Spec(table).ColumnIndex(column);
}

// -------------------------------------------------------------- round trip --

TEST(WireRoundTripTest, RichBatchSurvivesUnchanged) {
  Batch b = RichBatch();
  Batch decoded = DecodeBatch(EncodeBatch(b));
  ExpectSameBatch(b, decoded);
  // Typed as the columns say, not merely equal as text.
  const Change& rec = decoded.changes[1];
  EXPECT_TRUE(rec.row.values[Col("records", "ttl")].IsInt());
  EXPECT_TRUE(rec.row.values[Col("records", "disabled")].IsBool());
  EXPECT_TRUE(rec.row.values[Col("records", "prio")].IsNull());
  EXPECT_TRUE(rec.row.values[Col("records", "content")].IsText());
  // And a second trip gives the same bytes.
  EXPECT_EQ(EncodeBatch(decoded), EncodeBatch(b));
}

TEST(WireRoundTripTest, CompleteFlagAndEmptyBatchSurvive) {
  Batch b;
  b.origin = "ns-1.dc_a";
  b.target = "ns2";
  b.fingerprint = "";
  b.after = {0, 0};
  b.round_complete = true;
  ExpectSameBatch(b, DecodeBatch(EncodeBatch(b)));
  b.round_complete = false;
  EXPECT_FALSE(DecodeBatch(EncodeBatch(b)).round_complete);
}

TEST(WireRoundTripTest, EncodedFormIsTheDocumentedJson) {
  json j = json::parse(EncodeBatch(RichBatch()));
  EXPECT_EQ(j["v"], kProtocolVersion);
  EXPECT_EQ(j["origin"], "ns1");
  EXPECT_EQ(j["after"], json::array({3, 10}));
  EXPECT_EQ(j["complete"], false);
  const json& rec = j["changes"][1];
  EXPECT_EQ(rec["p"], json::array({4, 12}));
  EXPECT_EQ(rec["t"], "records");
  EXPECT_EQ(rec["o"], "U");
  EXPECT_EQ(rec["z"], "example.com");
  EXPECT_EQ(rec["h"], json::array({kT0 + 2, "ns1"}));
  EXPECT_EQ(rec["e"], json::array({kT0 - 50, "ns3"}));
  EXPECT_EQ(rec["v"][Col("records", "disabled")], true);
  EXPECT_EQ(rec["v"][Col("records", "ttl")], 86400);
  EXPECT_TRUE(rec["v"][Col("records", "prio")].is_null());
  EXPECT_TRUE(j["changes"][0]["z"].is_null());
}

TEST(WireRoundTripTest, LongestAllowedTextIsAccepted) {
  Batch b;
  b.origin = "ns1";
  b.target = "ns2";
  b.changes.push_back(MakeChange({1, 1}, "records", 'U',
                                 Record("example.com", "big.example.com", "TXT",
                                        std::string(kMaxValueBytes, 'x')),
                                 kT0));
  ExpectSameBatch(b, DecodeBatch(EncodeBatch(b)));
}

TEST(WireRoundTripTest, ValidJsonFixtureIsAccepted) {
  // The base of every rejection test below is itself valid.
  EXPECT_EQ(RejectionOf(ValidJson().dump()), "ACCEPTED");
}

// ------------------------------------------------------------- rejections --

TEST(WireRejectTest, NonJson) {
  for (const char* body : {"", "hello", "<html></html>", "\x01\x02\xff"}) {
    std::string msg = RejectionOf(body);
    EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  }
}

TEST(WireRejectTest, TruncatedJson) {
  std::string body = EncodeBatch(RichBatch());
  std::string msg = RejectionOf(body.substr(0, body.size() / 2));
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  msg = RejectionOf(body.substr(0, body.size() - 1));
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

TEST(WireRejectTest, NotAnObject) {
  for (const char* body : {"[]", "1", "\"batch\"", "null"}) {
    std::string msg = RejectionOf(body);
    EXPECT_NE(msg.find("must be a JSON object"), std::string::npos) << msg;
  }
}

TEST(WireRejectTest, WrongProtocolVersion) {
  json j = ValidJson();
  j["v"] = kProtocolVersion + 1;
  ExpectRejected(j, "protocol version " + std::to_string(kProtocolVersion + 1));
  j["v"] = 0;
  ExpectRejected(j, "protocol version 0");
  j["v"] = "1";
  ExpectRejected(j, "\"v\" must be a 64-bit integer");
}

TEST(WireRejectTest, MissingBatchFields) {
  for (const char* field : {"v", "origin", "target", "fingerprint", "after", "complete", "changes"}) {
    json j = ValidJson();
    j.erase(field);
    ExpectRejected(j, std::string("missing field \"") + field + "\"");
  }
}

TEST(WireRejectTest, MissingChangeFields) {
  for (const char* field : {"p", "t", "o", "k", "z", "v", "h", "vv", "e"}) {
    json j = ValidJson();
    j["changes"][1].erase(field);
    SCOPED_TRACE(field);
    ExpectRejected(j, std::string("missing field \"") + field + "\"");
    ExpectRejected(j, "change 1:");
  }
}

TEST(WireRejectTest, WrongBatchFieldTypes) {
  struct Case {
    const char* field;
    json value;
    const char* reason;
  };
  const Case cases[] = {
      {"origin", 5, "\"origin\" must be a string"},
      {"target", nullptr, "\"target\" must be a string"},
      {"fingerprint", json::array(), "\"fingerprint\" must be a string"},
      {"after", "1:5", "\"after\" must be [csn, id]"},
      {"after", json::array({1}), "\"after\" must be [csn, id]"},
      {"after", json::array({1, "5"}), "\"after\" must be [csn, id]"},
      {"after", json::array({-1, 5}), "\"after\" is out of range"},
      {"complete", "yes", "\"complete\" must be a boolean"},
      {"complete", 1, "\"complete\" must be a boolean"},
      {"changes", json::object(), "\"changes\" must be an array"},
  };
  for (const Case& c : cases) {
    json j = ValidJson();
    j[c.field] = c.value;
    SCOPED_TRACE(c.field);
    ExpectRejected(j, c.reason);
  }
}

TEST(WireRejectTest, WrongChangeFieldTypes) {
  struct Case {
    const char* field;
    json value;
    const char* reason;
  };
  const Case cases[] = {
      {"p", "2:7", "\"p\" must be [csn, id]"},
      {"p", json::array({2, 0}), "\"p\" must be positive"},
      {"t", 3, "\"t\" must be a string"},
      {"o", 'U', "\"o\" must be a string"},
      {"k", nullptr, "\"k\" must be a string"},
      {"v", json::object(), "\"v\" must be an array"},
      {"h", json::array({kT0 + 2}), "\"h\" must be [hlc, node]"},
      {"h", json::array({"1", "ns1"}), "\"h\" must be [hlc, node]"},
      {"h", json::array({0, "ns1"}), "\"h\" must be a real version"},
      {"h", json::array({-5, "ns1"}), "negative clock"},
      {"vv", json::array(), "\"vv\""},
      {"vv", json{{"ns1", "1"}}, "\"vv\""},
      {"vv", json{{"ns1", -1}}, "\"vv\""},
      {"e", "0@", "\"e\" must be [hlc, node]"},
  };
  for (const Case& c : cases) {
    json j = ValidJson();
    j["changes"][1][c.field] = c.value;
    SCOPED_TRACE(c.field + (" = " + c.value.dump()));
    ExpectRejected(j, c.reason);
  }
  json j = ValidJson();
  j["changes"][1] = "a change";
  ExpectRejected(j, "a change must be an object");
}

TEST(WireRejectTest, UnknownTable) {
  json j = ValidJson();
  j["changes"][1]["t"] = "zm_rowver";
  ExpectRejected(j, "unknown table \"zm_rowver\"");
}

TEST(WireRejectTest, UnknownOp) {
  for (const char* op : {"I", "u", "UD", ""}) {
    json j = ValidJson();
    j["changes"][1]["o"] = op;
    ExpectRejected(j, "\"o\" must be \"U\" or \"D\"");
  }
}

TEST(WireRejectTest, WrongNumberOfValues) {
  json j = ValidJson();
  j["changes"][1]["v"].erase(j["changes"][1]["v"].size() - 1);
  ExpectRejected(j, "replicated columns");
  j = ValidJson();
  j["changes"][1]["v"].push_back(nullptr);
  ExpectRejected(j, "replicated columns");
}

TEST(WireRejectTest, ValueOfTheWrongTypeForItsColumn) {
  struct Case {
    const char* column;
    json value;
  };
  const Case cases[] = {
      {"ttl", "3600"},   {"ttl", 3600.5},       {"ttl", true},      {"disabled", 0},
      {"disabled", "f"}, {"auth", 1},           {"name", 5},        {"content", false},
      {"ordername", json::array()}, {"prio", json::object()},
  };
  for (const Case& c : cases) {
    json j = ValidJson();
    j["changes"][1]["v"][Col("records", c.column)] = c.value;
    SCOPED_TRACE(std::string(c.column) + " = " + c.value.dump());
    ExpectRejected(j, std::string("column ") + c.column + " must be");
  }
}

TEST(WireRejectTest, TextLongerThanTheValueLimit) {
  const std::string limit = "longer than " + std::to_string(kMaxValueBytes) + " bytes";
  json j = ValidJson();
  j["changes"][1]["v"][Col("records", "content")] = std::string(kMaxValueBytes + 1, 'x');
  ExpectRejected(j, "column content is " + limit);
  j = ValidJson();
  j["changes"][0]["v"][Col("domains", "options")] = std::string(kMaxValueBytes + 1, 'o');
  ExpectRejected(j, "column options is " + limit);
}

// SQLite does not enforce declared lengths: a value longer than PowerDNS's
// widest column, captured there, must still travel (a database that cannot
// hold it refuses that one change, recorded, instead of the whole stream).
TEST(WireRoundTripTest, TextLongerThanPowerDnsColumnsStillTravels) {
  Batch b;
  b.origin = "ns1";
  b.target = "ns2";
  b.fingerprint = "F";
  b.changes.push_back(MakeChange(
      {1, 1}, "records", 'U',
      Record("example.com", "long.example.com", "TXT", std::string(70000, 'x')), kT0 + 1));
  Batch decoded = DecodeBatch(EncodeBatch(b));
  ASSERT_EQ(decoded.changes.size(), 1u);
  EXPECT_EQ(decoded.changes[0].row.values[Col("records", "content")].text().size(), 70000u);
}

// An integer beyond int64 must be refused, not wrapped (a ttl of
// 18446744073709551615 would otherwise be applied as -1).
TEST(WireRejectTest, IntegerOutsideInt64IsRefusedNotWrapped) {
  json j = ValidJson();
  j["changes"][1]["v"][Col("records", "ttl")] = json::parse("18446744073709551615");
  std::string msg = RejectionOf(j.dump());
  std::string decoded_as = "-";
  if (msg == "ACCEPTED") {
    decoded_as = DecodeBatch(j.dump()).changes[1].row.values[Col("records", "ttl")].AsText();
  }
  EXPECT_NE(msg.find("column ttl"), std::string::npos)
      << "ttl 18446744073709551615 was " << msg << ", decoded as ttl " << decoded_as;
}

TEST(WireRejectTest, ChildTableWithoutZone) {
  for (const json& z : {json(nullptr), json(""), json(5)}) {
    json j = ValidJson();
    j["changes"][1]["z"] = z;
    SCOPED_TRACE(z.dump());
    ExpectRejected(j, "table records needs its zone name in \"z\"");
  }
  json j = ValidJson();
  j["changes"][1]["z"] = std::string(256, 'z');
  ExpectRejected(j, "zone name longer than 255 bytes");
}

TEST(WireRejectTest, NonChildTableWithAZone) {
  json j = ValidJson();
  j["changes"][0]["z"] = "example.com";
  ExpectRejected(j, "table domains has no parent zone");
  ExpectRejected(j, "change 0:");
}

TEST(WireRejectTest, KeyThatDoesNotMatchTheRow) {
  json j = ValidJson();
  j["changes"][1]["k"] = "example.com|www.example.com|A|192.0.2.99";
  ExpectRejected(j, "does not match the row");
  // The row changed under an old key.
  j = ValidJson();
  j["changes"][1]["v"][Col("records", "content")] = "192.0.2.2";
  ExpectRejected(j, "does not match the row");
  j = ValidJson();
  j["changes"][1]["z"] = "example.net";
  ExpectRejected(j, "does not match the row");
  j = ValidJson();
  j["changes"][0]["k"] = "Example.com";
  ExpectRejected(j, "does not match the row");
}

TEST(WireRejectTest, ValueColumnsMayChangeUnderTheSameKey) {
  json j = ValidJson();
  j["changes"][1]["v"][Col("records", "ttl")] = 60;
  j["changes"][1]["v"][Col("records", "disabled")] = true;
  Batch b = DecodeBatch(j.dump());
  EXPECT_EQ(b.changes[1].row.values[Col("records", "ttl")], Value(int64_t{60}));
  EXPECT_EQ(b.changes[1].row.values[Col("records", "disabled")], Value(true));
}

TEST(WireRejectTest, PositionsMustIncreaseStrictly) {
  json j = ValidJson();
  j["changes"][1]["p"] = j["changes"][0]["p"];
  ExpectRejected(j, "positions must increase");
  ExpectRejected(j, "change 1:");
  j = ValidJson();
  j["changes"][1]["p"] = json::array({2, 5});  // same round, lower id
  ExpectRejected(j, "positions must increase");
  j = ValidJson();
  j["changes"][1]["p"] = json::array({1, 9});  // earlier round
  ExpectRejected(j, "positions must increase");
}

TEST(WireRejectTest, PositionsMustFollowAfter) {
  json j = ValidJson();  // after [1, 5]
  j["changes"][0]["p"] = json::array({1, 5});
  ExpectRejected(j, "positions must increase, 1:5 follows 1:5");
  j["changes"][0]["p"] = json::array({1, 4});
  ExpectRejected(j, "change 0: positions must increase");
}

TEST(WireRejectTest, LaterRoundMayHaveLowerOutboxId) {
  // Rounds are commit order; outbox ids are insert order.
  json j = ValidJson();  // after [1, 5], changes [2, 6], [2, 7]
  j["changes"][1]["p"] = json::array({3, 2});
  Batch b = DecodeBatch(j.dump());
  EXPECT_EQ(b.changes[1].pos, (Position{3, 2}));
}

TEST(WireRejectTest, ChangeWrittenByAnotherNodeThanTheOrigin) {
  json j = ValidJson();
  j["changes"][1]["h"] = json::array({kT0 + 2, "ns3"});
  j["changes"][1]["vv"] = {{"ns3", kT0 + 2}};
  ExpectRejected(j, "change 1: change written by \"ns3\" pushed by \"ns1\"");
}

TEST(WireRejectTest, VersionVectorMissingTheChangesOwnVersion) {
  json j = ValidJson();
  j["changes"][1]["vv"] = json::object();
  ExpectRejected(j, "does not contain the change's own version");
  j["changes"][1]["vv"] = {{"ns1", kT0 + 1}, {"ns2", kT0 + 2}};
  ExpectRejected(j, "does not contain the change's own version");
  j["changes"][1]["vv"] = {{"ns1", kT0 + 3}};
  ExpectRejected(j, "does not contain the change's own version");
}

TEST(WireRejectTest, ZoneDeleteMustStartItsOwnIncarnation) {
  json j = ValidJson();
  j["changes"][0]["o"] = "D";
  j["changes"][0]["e"] = json::array({0, ""});
  ExpectRejected(j, "a zone delete must start the incarnation named by its own version");
  j["changes"][0]["e"] = json::array({kT0 + 1, "ns2"});
  ExpectRejected(j, "a zone delete must start the incarnation");
  j["changes"][0]["e"] = json::array({kT0 + 1, "ns1"});
  EXPECT_EQ(RejectionOf(j.dump()), "ACCEPTED");
}

TEST(WireRejectTest, InvalidNodeIds) {
  json j = ValidJson();
  j["origin"] = "ns 1";
  ExpectRejected(j, "\"origin\" is not a valid node id");
  j["origin"] = "";
  ExpectRejected(j, "\"origin\" is not a valid node id");

  j = ValidJson();
  j["changes"][1]["h"] = json::array({kT0 + 2, "-ns1"});
  ExpectRejected(j, "\"h\" has an invalid node id");

  j = ValidJson();
  j["changes"][1]["vv"]["bad id"] = 1;
  ExpectRejected(j, "\"vv\" must be an object of node: hlc");

  j = ValidJson();
  j["changes"][1]["e"] = json::array({5, "x/y"});
  ExpectRejected(j, "\"e\" has an invalid node id");

  j = ValidJson();
  j["changes"][1]["h"] = json::array({kT0 + 2, ""});
  ExpectRejected(j, "\"h\" must be a real version");
}

// ------------------------------------------------------ RowImageFromPayload --

TEST(RowImageFromPayloadTest, ReadsTypedValuesAndTheZone) {
  std::vector<std::string> problems;
  RowImage row = RowImageFromPayload(
      Spec("records"),
      json{{"zone", "example.com"}, {"name", "www.example.com"}, {"type", "A"},
           {"content", "192.0.2.1"}, {"ttl", 300}, {"prio", nullptr}, {"disabled", false},
           {"ordername", "www"}, {"auth", true}},
      &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(row, Row("records", "example.com",
                     {{"name", "www.example.com"}, {"type", "A"}, {"content", "192.0.2.1"},
                      {"ttl", int64_t{300}}, {"disabled", false}, {"ordername", "www"},
                      {"auth", true}}));
  EXPECT_EQ(row.zone, std::optional<std::string>("example.com"));
  EXPECT_EQ(row.values[Col("records", "ttl")], Value(int64_t{300}));
  EXPECT_TRUE(row.values[Col("records", "prio")].IsNull());
}

TEST(RowImageFromPayloadTest, BooleansFromZeroOneAndTF) {
  struct Case {
    json in;
    bool out;
  };
  const Case cases[] = {{0, false}, {1, true}, {"t", true},     {"f", false},
                        {"1", true}, {"0", false}, {"true", true}, {"false", false}};
  for (const Case& c : cases) {
    std::vector<std::string> problems;
    RowImage row = RowImageFromPayload(Spec("records"), json{{"zone", "z"}, {"disabled", c.in}},
                                       &problems);
    SCOPED_TRACE(c.in.dump());
    EXPECT_TRUE(problems.empty());
    EXPECT_EQ(row.values[Col("records", "disabled")], Value(c.out));
  }
}

TEST(RowImageFromPayloadTest, IntegersFromNumericStrings) {
  std::vector<std::string> problems;
  RowImage row = RowImageFromPayload(
      Spec("comments"),
      json{{"zone", "z"}, {"modified_at", "1700000000"}, {"name", "n"}, {"type", "A"},
           {"comment", "c"}},
      &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(row.values[Col("comments", "modified_at")], Value(int64_t{1700000000}));
  row = RowImageFromPayload(Spec("records"), json{{"zone", "z"}, {"ttl", "-3"}}, &problems);
  EXPECT_EQ(row.values[Col("records", "ttl")], Value(int64_t{-3}));
  EXPECT_TRUE(problems.empty());
}

TEST(RowImageFromPayloadTest, TextFromNumbers) {
  std::vector<std::string> problems;
  RowImage row =
      RowImageFromPayload(Spec("records"), json{{"zone", "z"}, {"content", 42}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(row.values[Col("records", "content")], Value("42"));
}

TEST(RowImageFromPayloadTest, UnreadableValueBecomesNullAndIsReported) {
  std::vector<std::string> problems;
  RowImage row = RowImageFromPayload(
      Spec("records"),
      json{{"zone", "z"}, {"name", "n"}, {"ttl", "an hour"}, {"disabled", "maybe"},
           {"auth", json::array()}, {"content", json::object()}},
      &problems);
  EXPECT_TRUE(row.values[Col("records", "ttl")].IsNull());
  EXPECT_TRUE(row.values[Col("records", "disabled")].IsNull());
  EXPECT_TRUE(row.values[Col("records", "auth")].IsNull());
  EXPECT_TRUE(row.values[Col("records", "content")].IsNull());
  EXPECT_EQ(row.values[Col("records", "name")], Value("n"));
  ASSERT_EQ(problems.size(), 4u);
  std::string all;
  for (const std::string& p : problems) all += p + "\n";
  for (const char* column : {"ttl", "disabled", "auth", "content"}) {
    EXPECT_NE(all.find(std::string("column ") + column), std::string::npos) << all;
  }
}

TEST(RowImageFromPayloadTest, MissingColumnsAreNullAndNonObjectIsReported) {
  std::vector<std::string> problems;
  RowImage row = RowImageFromPayload(Spec("tsigkeys"), json{{"name", "k"}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_FALSE(row.zone.has_value());
  ASSERT_EQ(row.values.size(), Spec("tsigkeys").columns.size());
  EXPECT_TRUE(row.values[Col("tsigkeys", "secret")].IsNull());

  row = RowImageFromPayload(Spec("records"), json::array({1, 2}), &problems);
  EXPECT_EQ(problems.size(), 1u);
  EXPECT_EQ(row.values.size(), Spec("records").columns.size());
  for (const Value& v : row.values) EXPECT_TRUE(v.IsNull());
}

TEST(RowImageFromPayloadTest, ZoneIsOnlyReadForChildren) {
  RowImage row = RowImageFromPayload(Spec("domains"), json{{"zone", "x"}, {"name", "example.com"}},
                                     nullptr);
  EXPECT_FALSE(row.zone.has_value());
  EXPECT_EQ(row.values[Col("domains", "name")], Value("example.com"));
}

// Found by fuzz/batch_fuzzer: a number too large for a double is a JSON
// error like any other (it used to escape as an internal error).
TEST(WireRejectTest, NumberOutOfRangeIsMalformedJson) {
  std::string msg = RejectionOf("{\"v\": 1e999}");
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
}

// ------------------------------------------------------------ snapshots --

// A snapshot row with two concurrent states (two TTLs), as SnapshotService
// sends it.
json SnapshotRowWithSiblings() {
  Change shown = MakeChange({}, "records", 'U', Record("example.com", "www.example.com", "A", "192.0.2.1"),
                            kT0 + 2, "ns2");
  Change other = shown;
  other.version = {kT0 + 1, "ns1"};
  other.vv = VersionVector();
  other.vv.Set("ns1", kT0 + 1);
  other.row.values[Col("records", "ttl")] = Value(int64_t{60});
  shown.vv.Set("ns1", kT0 + 1);
  shown.siblings = {shown, other};
  return ChangeToJson(shown);
}

TEST(WireSnapshotTest, ConcurrentStatesOfASnapshotRowSurvive) {
  Change c = ChangeFromJson(SnapshotRowWithSiblings(), /*snapshot_row=*/true);
  ASSERT_EQ(c.siblings.size(), 2u);
  EXPECT_EQ(c.siblings[1].version, (Version{kT0 + 1, "ns1"}));
  EXPECT_EQ(c.siblings[1].row.values[Col("records", "ttl")], Value(int64_t{60}));
  EXPECT_EQ(c.siblings[1].key, c.key);
  json j = SnapshotRowWithSiblings();
  j["sib"][1]["o"] = "D";
  j["sib"][1]["v"] = nullptr;
  c = ChangeFromJson(j, true);
  EXPECT_EQ(c.siblings[1].op, 'D');
}

TEST(WireSnapshotTest, MalformedConcurrentStatesAreRefused) {
  auto refused = [](const json& j, const std::string& what) {
    try {
      ChangeFromJson(j, true);
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const WireError& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  json j = SnapshotRowWithSiblings();
  j["sib"].erase(1);
  refused(j, "2 to 64 concurrent states");
  j = SnapshotRowWithSiblings();
  j["sib"][1]["v"][Col("records", "content")] = "192.0.2.9";
  refused(j, "does not match the row");
  j = SnapshotRowWithSiblings();
  j["sib"][1]["v"] = nullptr;
  refused(j, "\"v\" must be an array");
  j = SnapshotRowWithSiblings();
  j["sib"][1]["o"] = "D";
  refused(j, "deleted state");
  j = SnapshotRowWithSiblings();
  j["sib"][1]["h"] = json::array({0, ""});
  refused(j, "real version");
  // Only snapshot rows carry them.
  j = SnapshotRowWithSiblings();
  j["p"] = json::array({2, 7});
  try {
    ChangeFromJson(j, false);
    ADD_FAILURE() << "a live change carried \"sib\"";
  } catch (const WireError& e) {
    EXPECT_NE(std::string(e.what()).find("belongs to snapshot rows"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zonemesh
