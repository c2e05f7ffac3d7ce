// The request router (replicator/router.h) without sockets, over a real
// backend: a SQLite database with zonemesh installed and a real Applier.
// Node "ns2" receives pushes and hellos from its configured peer "ns1".
// Every refused request must leave the database exactly as it was.
#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <cstring>
#include <sstream>
#include <set>
#include <regex>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "conflict/strategy.h"
#include "db/connection.h"
#include "db/open.h"
#include "replicator/applier.h"
#include "replicator/auth.h"
#include "replicator/config.h"
#include "replicator/anti_entropy.h"
#include "replicator/digest.h"
#include "replicator/dump.h"
#include "replicator/installer.h"
#include "replicator/router.h"
#include "replicator/status.h"
#include "replicator/wire.h"
#include "schema/key.h"
#include "schema/spec.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using db::Value;
using nlohmann::json;
using schema::RowImage;
using schema::TableSpec;

constexpr int64_t kT0 = 1700000000000000;  // µs

const TableSpec& Spec(const std::string& table) { return *schema::FindTable(table); }

// A change as node `origin` would push it for the zone's first incarnation.
Change MakeChange(Position pos, const std::string& table, RowImage row, int64_t hlc,
                  const std::string& origin = "ns1") {
  Change c;
  c.pos = pos;
  c.spec = &Spec(table);
  c.op = 'U';
  c.row = std::move(row);
  c.key = schema::EncodeKey(*c.spec, c.row);
  c.version = {hlc, origin};
  c.vv.Set(origin, hlc);
  c.epoch = {0, ""};
  return c;
}

Change ZoneUpsert(Position pos, const std::string& zone, int64_t hlc,
                  const std::string& origin = "ns1") {
  RowImage row;
  row.values = {Value(zone), Value(), Value("NATIVE"), Value(), Value(), Value()};
  return MakeChange(pos, "domains", std::move(row), hlc, origin);
}

Change RecordUpsert(Position pos, const std::string& zone, const std::string& name,
                    const std::string& type, const std::string& content, int64_t hlc,
                    const std::string& origin = "ns1") {
  RowImage row;
  row.zone = zone;
  // name, type, content, ttl, prio, disabled, ordername, auth
  row.values = {Value(name), Value(type), Value(content), Value(int64_t{3600}),
                Value(int64_t{0}), Value(false), Value(), Value(true)};
  return MakeChange(pos, "records", std::move(row), hlc, origin);
}

Batch MakeBatch(Position after, std::vector<Change> changes, const std::string& origin = "ns1",
                const std::string& target = "ns2", const std::string& fingerprint = "F") {
  Batch b;
  b.origin = origin;
  b.target = target;
  b.fingerprint = fingerprint;
  b.after = after;
  b.changes = std::move(changes);
  b.round_complete = true;
  return b;
}

// Round 1 of ns1's stream: a zone with its SOA and one A record.
Batch FirstBatch() {
  return MakeBatch({0, 0}, {ZoneUpsert({1, 1}, "example.com", kT0 + 1),
                            RecordUpsert({1, 2}, "example.com", "example.com", "SOA",
                                         "ns1.example.com. h.example.com. 1 10800 3600 604800 3600",
                                         kT0 + 2),
                            RecordUpsert({1, 3}, "example.com", "www.example.com", "A",
                                         "192.0.2.1", kT0 + 3)});
}

// Round 2: one more record.
Batch SecondBatch() {
  return MakeBatch({1, 3}, {RecordUpsert({2, 4}, "example.com", "mail.example.com", "A",
                                         "192.0.2.25", kT0 + 4)});
}

json ValidHelloFor(const std::string& origin) {
  return {{"v", kProtocolVersion}, {"origin", origin}, {"target", "ns2"}, {"fingerprint", "F"}};
}

std::string DbName() {
  std::string out = "router_";
  for (char c : std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    out += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  }
  return out;
}

// Router options for node ns2 with peer ns1. The test batches carry 2023
// clocks (kT0), so the history retention reaches back far enough.
Router::Options NodeOptions() {
  Router::Options o{"ns2", "F", {"ns1"}};
  o.history_retention_seconds = 20LL * 365 * 86400;
  return o;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::FreshDatabase(db::Dialect::kSqlite, DbName());
    conn_ = db::Open(db_);
    Install(*conn_, "ns2", /*create_schema=*/true);
    conn_->SetApplying(true);
    applier_ = std::make_unique<Applier>(*conn_, policy_, "ns2");

    json cfg = {{"node_id", "ns2"},
                {"listen", "127.0.0.1:8302"},
                {"database", {{"type", "sqlite"}, {"path", db_.path}}},
                {"peers", json::array({{{"id", "ns1"}, {"url", "http://127.0.0.1:8301"}}})}};
    config_ = ParseConfig(cfg.dump(), testing::ScratchDir(), "router_test.json");
    board_ = std::make_unique<StatusBoard>(config_, conn_->Describe());
    board_->SetDatabase(true, "");

    Router::Backend backend;
    backend.apply = [this](const Batch& b) { return applier_->Apply(b); };
    backend.acknowledged = [this](const std::string& o) { return applier_->Acknowledged(o); };
    router_ = std::make_unique<Router>(NodeOptions(), std::move(backend),
                                       *board_);
  }

  HttpResponse Request(const std::string& method, const std::string& target,
                       const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {}) {
    return router_->Handle(HttpRequest{method, target, body, "127.0.0.1:40000", headers});
  }

  // Rebuilds the router with `options` (auth, scope), same backend.
  void Reconfigure(Router::Options options) {
    Router::Backend backend;
    backend.apply = [this](const Batch& b) { return applier_->Apply(b); };
    backend.acknowledged = [this](const std::string& o) { return applier_->Acknowledged(o); };
    backend.digest = [this](const std::optional<std::string>& zone) {
      std::vector<std::string> dump = CanonicalDump(*conn_);
      if (zone) return json{{"zone", *zone}, {"lines", LinesOfZone(dump, *zone)}};
      return DigestsToJson(ZoneDigests(dump));
    };
    trees_ = std::make_unique<AntiEntropy>([this] { return db::Open(db_); }, 0, 3600000000LL);
    backend.tree = [this](const json& request) { return trees_->Serve(request); };
    router_ = std::make_unique<Router>(std::move(options), std::move(backend), *board_);
  }
  HttpResponse Push(const std::string& body) { return Request("POST", "/v1/push", body); }
  HttpResponse Push(const Batch& b) { return Push(EncodeBatch(b)); }
  HttpResponse Hello(const json& body) { return Request("POST", "/v1/hello", body.dump()); }

  static json Body(const HttpResponse& r) {
    json j = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "response body is not JSON: " << r.body;
    return j;
  }

  std::vector<std::string> Dump() { return CanonicalDump(*conn_); }
  std::unique_ptr<AntiEntropy> trees_;

  int64_t Count(const std::string& sql) { return conn_->Query(sql)[0][0].AsInt(); }

  // Asserts a refused request: status, an "error" reason, nothing changed.
  void ExpectRefused(const HttpResponse& r, int status, const std::vector<std::string>& before,
                     Position ack_before) {
    EXPECT_EQ(r.status, status) << r.body;
    json body = Body(r);
    ASSERT_TRUE(body.is_object());
    ASSERT_TRUE(body.contains("error")) << r.body;
    EXPECT_TRUE(body["error"].is_string());
    EXPECT_FALSE(body["error"].get<std::string>().empty());
    EXPECT_EQ(Dump(), before);
    EXPECT_EQ(applier_->Acknowledged("ns1"), ack_before);
  }

  db::DatabaseConfig db_;
  std::unique_ptr<db::Connection> conn_;
  conflict::Policy policy_{"latest-wins", {}};
  std::unique_ptr<Applier> applier_;
  Config config_;
  std::unique_ptr<StatusBoard> board_;
  std::unique_ptr<Router> router_;
};

// ------------------------------------------------------------------- push --

TEST_F(RouterTest, ValidPushIsAppliedAndAcknowledged) {
  HttpResponse r = Push(FirstBatch());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  json body = Body(r);
  EXPECT_EQ(body["ack"], json::array({1, 3}));
  EXPECT_EQ(body["applied"], 3);
  EXPECT_EQ(body["duplicates"], 0);
  EXPECT_EQ(body["node_id"], "ns2");

  auto zones = conn_->Query("SELECT id, name, type FROM domains");
  ASSERT_EQ(zones.size(), 1u);
  EXPECT_EQ(zones[0][1].AsText(), "example.com");
  EXPECT_EQ(zones[0][2].AsText(), "NATIVE");
  auto records = conn_->Query(
      "SELECT domain_id, name, type, content, ttl FROM records ORDER BY name");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0][0].AsInt(), zones[0][0].AsInt()) << "mapped to the local zone id";
  EXPECT_EQ(records[0][1].AsText(), "example.com");
  EXPECT_EQ(records[0][2].AsText(), "SOA");
  EXPECT_EQ(records[1][1].AsText(), "www.example.com");
  EXPECT_EQ(records[1][3].AsText(), "192.0.2.1");
  EXPECT_EQ(records[1][4].AsInt(), 3600);

  EXPECT_EQ(applier_->Acknowledged("ns1"), (Position{1, 3}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zm_outbox"), 0) << "applied changes were captured again";
  EXPECT_TRUE(SanityProblems(*conn_).empty());
}

TEST_F(RouterTest, PushIsRecordedInStatus) {
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  json status = Body(Request("GET", "/status"));
  ASSERT_TRUE(status["origins"].is_array());
  ASSERT_EQ(status["origins"].size(), 1u);
  EXPECT_EQ(status["origins"][0]["id"], "ns1");
  EXPECT_EQ(status["origins"][0]["applied"], "1:3");
  EXPECT_EQ(status["origins"][0]["changes_applied"], 3);
}

TEST_F(RouterTest, SecondRoundContinuesTheStream) {
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  HttpResponse r = Push(SecondBatch());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["ack"], json::array({2, 4}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 3);
}

TEST_F(RouterTest, RepeatedPushIsAcknowledgedButNotAppliedTwice) {
  const std::string body = EncodeBatch(FirstBatch());
  HttpResponse first = Push(body);
  ASSERT_EQ(first.status, 200) << first.body;
  const std::vector<std::string> after_first = Dump();
  const int64_t rowvers = Count("SELECT COUNT(*) FROM zm_rowver");

  HttpResponse again = Push(body);
  ASSERT_EQ(again.status, 200) << again.body;
  json b = Body(again);
  EXPECT_EQ(b["ack"], Body(first)["ack"]);
  EXPECT_EQ(b["duplicates"], 3);
  EXPECT_EQ(b["applied"], 0);
  EXPECT_EQ(Dump(), after_first);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zm_rowver"), rowvers);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zm_conflict"), 0);

  json status = Body(Request("GET", "/status"));
  EXPECT_EQ(status["origins"][0]["duplicates_skipped"], 3);
}

TEST_F(RouterTest, OverlappingPushAppliesOnlyWhatIsNew) {
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  Batch both = FirstBatch();
  for (Change& c : SecondBatch().changes) both.changes.push_back(c);
  HttpResponse r = Push(both);
  ASSERT_EQ(r.status, 200) << r.body;
  json b = Body(r);
  EXPECT_EQ(b["duplicates"], 3);
  EXPECT_EQ(b["applied"], 1);
  EXPECT_EQ(b["ack"], json::array({2, 4}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 3);
}

TEST_F(RouterTest, RoundSplitAcrossBatchesIsAppliedOnlyWhenComplete) {
  Batch all = FirstBatch();
  Batch head = MakeBatch({0, 0}, {all.changes[0], all.changes[1]});
  head.round_complete = false;
  HttpResponse r = Push(head);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["ack"], json::array({1, 2})) << "staged changes are acknowledged";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM domains"), 0) << "half a round reached the tables";
  EXPECT_EQ(Body(Hello(ValidHelloFor("ns1")))["ack"], json::array({1, 2}));

  HttpResponse tail = Push(MakeBatch({1, 2}, {all.changes[2]}));
  ASSERT_EQ(tail.status, 200) << tail.body;
  EXPECT_EQ(Body(tail)["ack"], json::array({1, 3}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM domains"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 2);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zm_stage"), 0);
}

TEST_F(RouterTest, MalformedPushIsRejectedAndChangesNothing) {
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  const std::vector<std::string> before = Dump();
  ASSERT_FALSE(before.empty());
  const std::string valid = EncodeBatch(SecondBatch());

  json tampered = json::parse(valid);
  tampered["changes"][0]["k"] = "example.com|mail.example.com|A|192.0.2.99";
  json bad_type = json::parse(valid);
  bad_type["changes"][0]["v"][3] = "3600";

  const std::vector<std::string> bodies = {"",
                                           "not json",
                                           "[]",
                                           "{}",
                                           valid.substr(0, valid.size() / 2),
                                           tampered.dump(),
                                           bad_type.dump()};
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body.substr(0, 80));
    ExpectRefused(Push(body), 400, before, {1, 3});
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records"), 2);
  // The same batch, well-formed, still applies afterwards.
  EXPECT_EQ(Push(valid).status, 200);
}

TEST_F(RouterTest, TruncatedPushSaysWhyItWasRejected) {
  const std::string valid = EncodeBatch(FirstBatch());
  HttpResponse r = Push(valid.substr(0, valid.size() / 2));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(Body(r)["error"].get<std::string>().find("not valid JSON"), std::string::npos)
      << r.body;
  EXPECT_TRUE(Dump().empty());
}

// The parse error quotes the bytes it read; invalid UTF-8 in the reason must
// still give 400 with the reason, not a 500 from the JSON serializer.
TEST_F(RouterTest, MalformedPushWithInvalidUtf8IsA400NotA500) {
  HttpResponse r = Push("{\"v\": \xff\xfe}");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_TRUE(Dump().empty());
}

// The same reason is kept as last_rejection: one bad request from anyone
// must not break /status afterwards.
TEST_F(RouterTest, StatusStillWorksAfterAPushWithInvalidUtf8) {
  Push("{\"v\": \xff\xfe}");
  HttpResponse r = Request("GET", "/status");
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(RouterTest, PushFromAnUnknownOriginIsForbidden) {
  Batch b = MakeBatch({0, 0},
                      {ZoneUpsert({1, 1}, "evil.example", kT0 + 1, "ns3"),
                       RecordUpsert({1, 2}, "evil.example", "evil.example", "A", "192.0.2.66",
                                    kT0 + 2, "ns3")},
                      "ns3");
  HttpResponse r = Push(b);
  ExpectRefused(r, 403, {}, {0, 0});
  EXPECT_EQ(applier_->Acknowledged("ns3"), (Position{0, 0}));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM domains"), 0);
  EXPECT_EQ(Body(Request("GET", "/status"))["rejected_requests"], 1);
}

TEST_F(RouterTest, PushForAnotherNodeIsMisdirected) {
  Batch b = FirstBatch();
  b.target = "ns3";
  ExpectRefused(Push(b), 421, {}, {0, 0});
}

TEST_F(RouterTest, PushWithAnotherFingerprintIsIncompatible) {
  Batch b = FirstBatch();
  b.fingerprint = "G";
  HttpResponse r = Push(b);
  ExpectRefused(r, 409, {}, {0, 0});
  json body = Body(r);
  EXPECT_NE(body["error"].get<std::string>().find("incompatible"), std::string::npos) << r.body;
  EXPECT_FALSE(body.contains("ack")) << "an incompatible peer must not look like a gap";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM domains"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM zm_applied"), 0);
}

TEST_F(RouterTest, PushStartingBeyondWhatThisNodeHoldsIsAGap) {
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  const std::vector<std::string> before = Dump();
  // Round 2 was lost; round 3 arrives.
  Batch b = MakeBatch({2, 4}, {RecordUpsert({3, 5}, "example.com", "late.example.com", "A",
                                            "192.0.2.77", kT0 + 5)});
  HttpResponse r = Push(b);
  ExpectRefused(r, 409, before, {1, 3});
  json body = Body(r);
  EXPECT_EQ(body["ack"], json::array({1, 3}));
  EXPECT_NE(body["error"].get<std::string>().find("gap"), std::string::npos) << r.body;
  EXPECT_EQ(Count("SELECT COUNT(*) FROM records WHERE name = 'late.example.com'"), 0);
}

TEST_F(RouterTest, GapOnAFreshNodeAnswersTheZeroPosition) {
  Batch b = SecondBatch();  // after [1, 3], but nothing is held
  HttpResponse r = Push(b);
  ExpectRefused(r, 409, {}, {0, 0});
  EXPECT_EQ(Body(r)["ack"], json::array({0, 0}));
}

// ------------------------------------------------------------------ hello --

json ValidHello() { return ValidHelloFor("ns1"); }

TEST_F(RouterTest, HelloAnswersThePositionHeldForThatOrigin) {
  HttpResponse fresh = Hello(ValidHello());
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_EQ(Body(fresh)["ack"], json::array({0, 0}));
  EXPECT_EQ(Body(fresh)["node_id"], "ns2");

  ASSERT_EQ(Push(FirstBatch()).status, 200);
  HttpResponse later = Hello(ValidHello());
  ASSERT_EQ(later.status, 200) << later.body;
  EXPECT_EQ(Body(later)["ack"], json::array({1, 3}));
}

TEST_F(RouterTest, MalformedHelloIsRejected) {
  std::vector<std::string> bodies = {"", "hello", "[]", "{}"};
  for (const char* field : {"v", "origin", "target", "fingerprint"}) {
    json j = ValidHello();
    j.erase(field);
    bodies.push_back(j.dump());
    j = ValidHello();
    j[field] = json::array();
    bodies.push_back(j.dump());
  }
  json old = ValidHello();
  old["v"] = kProtocolVersion + 1;
  bodies.push_back(old.dump());
  for (const std::string& body : bodies) {
    SCOPED_TRACE(body);
    HttpResponse r = Request("POST", "/v1/hello", body);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_TRUE(Body(r).contains("error")) << r.body;
  }
}

TEST_F(RouterTest, HelloChecksTheSenderLikeAPush) {
  json j = ValidHello();
  j["origin"] = "ns3";
  EXPECT_EQ(Hello(j).status, 403);
  j = ValidHello();
  j["target"] = "ns1";
  EXPECT_EQ(Hello(j).status, 421);
  j = ValidHello();
  j["fingerprint"] = "G";
  HttpResponse r = Hello(j);
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(Body(r)["error"].get<std::string>().find("incompatible"), std::string::npos);
}

// ------------------------------------------------------- status and health --

TEST_F(RouterTest, StatusIsJsonWithNodeAndPeers) {
  HttpResponse r = Request("GET", "/status");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  json body = Body(r);
  EXPECT_EQ(body["node_id"], "ns2");
  ASSERT_TRUE(body["peers"].is_array());
  ASSERT_EQ(body["peers"].size(), 1u);
  EXPECT_EQ(body["peers"][0]["id"], "ns1");
  EXPECT_EQ(body["peers"][0]["url"], "http://127.0.0.1:8301");
  EXPECT_EQ(body["database"]["type"], "sqlite");
}

TEST_F(RouterTest, StatusIgnoresTheQueryString) {
  EXPECT_EQ(Request("GET", "/status?pretty=1").status, 200);
}

TEST_F(RouterTest, HealthFollowsTheDatabaseState) {
  HttpResponse ok = Request("GET", "/health");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(Body(ok)["ok"], true);
  board_->SetDatabase(false, "database is locked");
  HttpResponse down = Request("GET", "/health");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(Body(down)["ok"], false);
}

// ----------------------------------------------------------------- routing --

TEST_F(RouterTest, UnknownPathIsNotFound) {
  for (const char* path : {"/", "/v1/pushes", "/v2/push", "/statusx", "/v1"}) {
    HttpResponse r = Request("GET", path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_TRUE(Body(r).contains("error")) << path;
  }
  EXPECT_EQ(Request("POST", "/v1/pull", EncodeBatch(FirstBatch())).status, 404);
  EXPECT_TRUE(Dump().empty());
}

// The 404 message echoes the path; non-UTF-8 bytes in it must not turn the
// answer into a 500.
TEST_F(RouterTest, UnknownNonUtf8PathIsA404NotA500) {
  HttpResponse r = Request("GET", "/\xff\xfe");
  EXPECT_EQ(r.status, 404) << r.body;
}

TEST_F(RouterTest, WrongMethodIsNotAllowed) {
  struct Case {
    const char* method;
    const char* path;
  };
  for (const Case& c : {Case{"GET", "/v1/push"}, Case{"PUT", "/v1/push"},
                        Case{"GET", "/v1/hello"}, Case{"POST", "/status"},
                        Case{"DELETE", "/health"}}) {
    HttpResponse r = Request(c.method, c.path, EncodeBatch(FirstBatch()));
    EXPECT_EQ(r.status, 405) << c.method << " " << c.path;
    EXPECT_TRUE(Body(r).contains("error"));
  }
  EXPECT_TRUE(Dump().empty()) << "a push sent with the wrong method was applied";
}

// ------------------------------------------------------------------ auth --

constexpr const char* kSecret = "0123456789abcdef-mesh-secret";

class AuthRouterTest : public RouterTest {
 protected:
  void SetUp() override {
    RouterTest::SetUp();
    verifier_ = std::make_unique<RequestVerifier>(kSecret, std::chrono::seconds(300));
    Router::Options o = NodeOptions();
    o.verifier = verifier_.get();
    Reconfigure(o);
  }
  HttpResponse SignedPush(const std::string& body, const std::string& secret = kSecret) {
    return Request("POST", "/v1/push", body, SignRequest(secret, "POST", "/v1/push", body));
  }
  int64_t Domains() { return conn_->Query("SELECT COUNT(*) FROM domains")[0][0].AsInt(); }

  std::unique_ptr<RequestVerifier> verifier_;
};

TEST(Auth, HmacSha256MatchesRfc4231) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_F(AuthRouterTest, SignedPushIsApplied) {
  HttpResponse r = SignedPush(EncodeBatch(FirstBatch()));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Domains(), 1);
}

TEST_F(AuthRouterTest, UnsignedPushAndHelloAreRefusedWithoutChangingData) {
  HttpResponse r = Push(FirstBatch());
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.body.find("not signed"), std::string::npos) << r.body;
  EXPECT_EQ(Request("POST", "/v1/hello", ValidHelloFor("ns1").dump()).status, 401);
  // The digests and the rows of a zone (DNSSEC keys, TSIG secrets) too.
  EXPECT_EQ(Request("POST", "/v1/digest", ValidHelloFor("ns1").dump()).status, 401);
  EXPECT_EQ(Domains(), 0);
  // Read-only endpoints stay open.
  EXPECT_EQ(Request("GET", "/status").status, 200);
}

TEST_F(AuthRouterTest, WrongSecretIsRefused) {
  HttpResponse r = SignedPush(EncodeBatch(FirstBatch()), "another-secret-of-16+chars");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("bad signature"), std::string::npos) << r.body;
  EXPECT_EQ(Domains(), 0);
}

TEST_F(AuthRouterTest, TamperedBodyIsRefused) {
  const std::string body = EncodeBatch(FirstBatch());
  auto headers = SignRequest(kSecret, "POST", "/v1/push", body);
  std::string tampered = body;
  tampered.replace(tampered.find("192.0.2."), 8, "198.51.1");
  HttpResponse r = Request("POST", "/v1/push", tampered, headers);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(Domains(), 0);
}

TEST_F(AuthRouterTest, SignatureForAnotherPathIsRefused) {
  const std::string body = ValidHelloFor("ns1").dump();
  auto headers = SignRequest(kSecret, "POST", "/v1/push", body);
  EXPECT_EQ(Request("POST", "/v1/hello", body, headers).status, 401);
}

TEST_F(AuthRouterTest, ReplayedRequestIsRefused) {
  const std::string body = EncodeBatch(FirstBatch());
  auto headers = SignRequest(kSecret, "POST", "/v1/push", body);
  EXPECT_EQ(Request("POST", "/v1/push", body, headers).status, 200);
  HttpResponse again = Request("POST", "/v1/push", body, headers);
  EXPECT_EQ(again.status, 401);
  EXPECT_NE(again.body.find("replayed"), std::string::npos) << again.body;
}

TEST_F(AuthRouterTest, StaleTimestampIsRefused) {
  const std::string body = EncodeBatch(FirstBatch());
  const std::string ts = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() -
      3600);
  const std::string nonce = "00112233445566778899aabbccddeeff";
  std::map<std::string, std::string> headers = {
      {kTimestampHeader, ts},
      {kNonceHeader, nonce},
      {kSignatureHeader, HmacSha256Hex(kSecret, CanonicalRequest("POST", "/v1/push", ts, nonce, body))}};
  HttpResponse r = Request("POST", "/v1/push", body, headers);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.body.find("clock skew"), std::string::npos) << r.body;
  EXPECT_EQ(Domains(), 0);
}

TEST_F(RouterTest, ScopesSplitPeerAndReadOnlyEndpoints) {
  Router::Options peers = NodeOptions();
  peers.scope = Router::Scope::kPeers;
  Reconfigure(peers);
  EXPECT_EQ(Request("GET", "/status").status, 404);
  EXPECT_EQ(Push(FirstBatch()).status, 200);
  Router::Options read_only = NodeOptions();
  read_only.scope = Router::Scope::kReadOnly;
  Reconfigure(read_only);
  EXPECT_EQ(Request("GET", "/status").status, 200);
  EXPECT_EQ(Request("GET", "/health").status, 200);
  EXPECT_EQ(Push(SecondBatch()).status, 404);
  EXPECT_EQ(conn_->Query("SELECT COUNT(*) FROM records WHERE name = 'mail.example.com'")[0][0].AsInt(), 0);
}

// ---------------------------------------------------------- monitoring --

// Checks the Prometheus text format: HELP/TYPE before samples of a family,
// every sample `name{labels} value` with a finite number.
std::vector<std::string> PrometheusProblems(const std::string& text) {
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$)");
  static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  std::vector<std::string> problems;
  std::set<std::string> typed;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      if (!std::regex_match(line, m, type)) problems.push_back("bad TYPE line: " + line);
      else typed.insert(m[1]);
      continue;
    }
    if (!std::regex_match(line, m, sample)) {
      problems.push_back("bad sample: " + line);
      continue;
    }
    std::string family = m[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (family.size() > strlen(suffix) && family.compare(family.size() - strlen(suffix), strlen(suffix), suffix) == 0 &&
          typed.count(family.substr(0, family.size() - strlen(suffix))))
        family = family.substr(0, family.size() - strlen(suffix));
    }
    if (!typed.count(family)) problems.push_back("sample before its TYPE: " + line);
  }
  return problems;
}

TEST_F(RouterTest, MetricsAreValidPrometheusTextWithRealFigures) {
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  board_->ObserveApplyDuration(0.003);
  board_->UpdatePeer("ns1", [](PeerState& p) {
    p.queue_depth = 7;
    p.batches_sent = 3;
  });
  HttpResponse r = Request("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0u) << r.content_type;
  auto problems = PrometheusProblems(r.body);
  EXPECT_TRUE(problems.empty()) << problems.front() << "\n" << r.body;
  EXPECT_NE(r.body.find("zonemesh_peer_queue_depth{node=\"ns2\",peer=\"ns1\"} 7\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("zonemesh_changes_applied_total{node=\"ns2\",origin=\"ns1\"} 3\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("zonemesh_apply_duration_seconds_bucket{node=\"ns2\",le=\"0.005\"} 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("zonemesh_apply_duration_seconds_count{node=\"ns2\"} 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("zonemesh_database_up{node=\"ns2\"} 1\n"), std::string::npos);
}

TEST_F(RouterTest, HealthFailsOnTheNodeThatMissesDataOrWhoseDatabaseIsDown) {
  Router::Options o = NodeOptions();
  o.health_max_lag_seconds = 30;
  Reconfigure(o);
  EXPECT_EQ(Request("GET", "/health").status, 200);
  // This node's own changes wait for ns1 for two minutes: ns1 is the one
  // behind, not this node.
  board_->UpdatePeer("ns1", [](PeerState& p) {
    p.queue_depth = 12;
    p.oldest_unacked_hlc = NowMicros() - 120 * 1000000LL;
  });
  EXPECT_EQ(Request("GET", "/health").status, 200);
  // ns1's heartbeat says 12 of its changes are missing here, the oldest two
  // minutes old: this node is behind.
  json heartbeat{{"v", kProtocolVersion},
                 {"origin", "ns1"},
                 {"target", "ns2"},
                 {"fingerprint", "F"},
                 {"head", json::array({40, 400})},
                 {"unacked", 12},
                 {"oldest_unacked_hlc", NowMicros() - 120 * 1000000LL},
                 {"heard", json::object()}};
  ASSERT_EQ(Request("POST", "/v1/hello", heartbeat.dump()).status, 200);
  HttpResponse behind = Request("GET", "/health");
  EXPECT_EQ(behind.status, 503);
  EXPECT_NE(behind.body.find("ns1: it says 12 change(s)"), std::string::npos) << behind.body;
  json status = json::parse(Request("GET", "/status").body);
  json origin;
  for (const json& e : status["origins"]) {
    if (e["id"] == "ns1") origin = e;
  }
  EXPECT_EQ(origin["head"], "40:400") << status.dump();
  EXPECT_EQ(origin["behind_changes"], 12) << status.dump();
  // Allowing one peer behind makes it healthy again.
  o.health_max_lagging_peers = 1;
  Reconfigure(o);
  EXPECT_EQ(Request("GET", "/health").status, 200);
  // Malformed heartbeat fields are refused and change nothing.
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, json>>{{"head", json::array({1})},
                                                 {"unacked", -1},
                                                 {"oldest_unacked_hlc", "yesterday"},
                                                 {"heard", json::array()},
                                                 {"heard", json{{"not a node id!", 5}}},
                                                 {"heard", json{{"ns3", -5}}}}) {
    json bad = heartbeat;
    bad[field] = value;
    EXPECT_EQ(Request("POST", "/v1/hello", bad.dump()).status, 400) << field << " " << value.dump();
  }
  board_->UpdatePeer("ns1", [](PeerState& p) { p.queue_depth = 0; });
  board_->SetDatabase(false, "connection refused");
  HttpResponse down = Request("GET", "/health");
  EXPECT_EQ(down.status, 503);
  EXPECT_NE(down.body.find("database"), std::string::npos) << down.body;
  board_->SetDatabase(true, "");
  EXPECT_EQ(Request("GET", "/health").status, 200);
}

TEST_F(RouterTest, ChangesOlderThanTheHistoryRetentionAreRefusedAsNeedingResync) {
  Router::Options o = NodeOptions();
  o.history_retention_seconds = 7 * 86400;  // the 2023 batches are far older
  Reconfigure(o);
  HttpResponse r = Push(FirstBatch());
  EXPECT_EQ(r.status, 409);
  json j = json::parse(r.body);
  EXPECT_TRUE(j.value("needs_resync", false)) << r.body;
  EXPECT_NE(j["error"].get<std::string>().find("history retention"), std::string::npos) << r.body;
  EXPECT_EQ(conn_->Query("SELECT COUNT(*) FROM domains")[0][0].AsInt(), 0);
  EXPECT_EQ(applier_->Acknowledged("ns1"), Position{});
}

TEST_F(RouterTest, DigestsAreServedToPeersOnly) {
  EXPECT_EQ(Request("POST", "/v1/digest", ValidHelloFor("ns1").dump()).status, 404)
      << "served without a digest backend";
  Reconfigure(NodeOptions());  // with one
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  json ask = ValidHelloFor("ns1");
  HttpResponse r = Request("POST", "/v1/digest", ask.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  std::map<std::string, ZoneDigest> got = DigestsFromJson(Body(r));
  EXPECT_EQ(got, ZoneDigests(Dump()));
  ASSERT_EQ(got.size(), 1u);
  const std::string zone = got.begin()->first;
  ask["zone"] = zone;
  r = Request("POST", "/v1/digest", ask.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["lines"], json(LinesOfZone(Dump(), zone)));
  // Strangers and malformed requests learn nothing.
  json stranger = ValidHelloFor("ns1");
  stranger["origin"] = "mallory";
  EXPECT_EQ(Request("POST", "/v1/digest", stranger.dump()).status, 403);
  json bad = ValidHelloFor("ns1");
  bad["zone"] = 5;
  EXPECT_EQ(Request("POST", "/v1/digest", bad.dump()).status, 400);
  EXPECT_EQ(Request("GET", "/v1/digest").status, 405);
}

TEST_F(RouterTest, AntiEntropyTreesAreServedToPeersOnlyAndCheckedStrictly) {
  json ask = ValidHelloFor("ns1");
  ask["tree"] = "roots";
  EXPECT_EQ(Request("POST", "/v1/digest", ask.dump()).status, 404) << "served without a tree backend";
  Reconfigure(NodeOptions());
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  HttpResponse r = Request("POST", "/v1/digest", ask.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json zones = Body(r)["zones"];
  ASSERT_EQ(zones.size(), 1u) << r.body;
  const std::string zone = zones.begin().key();
  // The root is the tree of the zone's dump lines.
  std::vector<DumpLine> lines = ZoneDumpLines(*conn_, zone);
  const ZoneTree tree = BuildZoneTree(lines);
  EXPECT_EQ(zones[zone]["root"], HashText(tree.root));
  EXPECT_EQ(zones[zone]["rows"], static_cast<int64_t>(lines.size()));
  // Down the tree to the rows of one leaf, with their versions.
  ask["tree"] = "groups";
  ask["zone"] = zone;
  r = Request("POST", "/v1/digest", ask.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["groups"].size(), static_cast<size_t>(kTreeGroups));
  const int leaf = LeafOf(lines[0].table, lines[0].key);
  ask["tree"] = "leaves";
  ask["groups"] = json::array({leaf / kGroupLeaves});
  r = Request("POST", "/v1/digest", ask.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["leaves"][0][leaf % kGroupLeaves], HashText(tree.LeavesOfGroup(leaf / kGroupLeaves)[leaf % kGroupLeaves]));
  ask["tree"] = "rows";
  ask["leaves"] = json::array({leaf});
  r = Request("POST", "/v1/digest", ask.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  bool found = false;
  const json rows = Body(r)["rows"];
  for (const json& row : rows) {
    Change c = ChangeFromJson(row, /*snapshot_row=*/true);
    EXPECT_EQ(LeafOf(c.spec->name, c.key), leaf);
    EXPECT_FALSE(c.version.IsZero()) << row.dump();
    found = found || (c.spec->name == lines[0].table && c.key == lines[0].key);
  }
  EXPECT_TRUE(found) << lines[0].table << " [" << lines[0].key << "] not in " << r.body;
  // Malformed requests are refused, naming what is wrong.
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"tree", "everything"}, {"leaves", json::array({kTreeLeaves})}, {"leaves", json::array()},
           {"leaves", json(std::vector<int>(kLeavesPerRequest + 1, 1))}, {"zone", 7}}) {
    json bad = ask;
    bad[field] = value;
    HttpResponse b = Request("POST", "/v1/digest", bad.dump());
    EXPECT_EQ(b.status, 400) << field << "=" << value.dump() << ": " << b.body;
  }
  // Strangers learn nothing.
  json stranger = ask;
  stranger["origin"] = "mallory";
  EXPECT_EQ(Request("POST", "/v1/digest", stranger.dump()).status, 403);
}

TEST_F(RouterTest, NoticeOfNeededResyncFailsHealthUntilTheOriginPushesAgain) {
  EXPECT_EQ(Request("GET", "/health").status, 200);
  json notice{{"v", kProtocolVersion},
              {"origin", "ns1"},
              {"target", "ns2"},
              {"fingerprint", "F"},
              {"needs_resync", "history purged"}};
  json unversioned = notice;
  unversioned.erase("v");
  EXPECT_EQ(Request("POST", "/v1/notice", unversioned.dump()).status, 400);
  json future = notice;
  future["v"] = kProtocolVersion + 1;
  EXPECT_EQ(Request("POST", "/v1/notice", future.dump()).status, 400);
  EXPECT_EQ(Request("GET", "/health").status, 200);
  EXPECT_EQ(Request("POST", "/v1/notice", notice.dump()).status, 200);
  HttpResponse h = Request("GET", "/health");
  EXPECT_EQ(h.status, 503);
  EXPECT_NE(h.body.find("resync"), std::string::npos) << h.body;
  json status = json::parse(Request("GET", "/status").body);
  ASSERT_EQ(status["needs_resync"].size(), 1u);
  EXPECT_EQ(status["needs_resync"][0]["peer"], "ns1");
  // A notice from a stranger changes nothing.
  json stranger = notice;
  stranger["origin"] = "ns9";
  EXPECT_EQ(Request("POST", "/v1/notice", stranger.dump()).status, 403);
  EXPECT_EQ(Request("GET", "/health").status, 503);

  // ns1 pushes again (this node was resynced): the mark is over.
  ASSERT_EQ(Push(FirstBatch()).status, 200);
  EXPECT_EQ(Request("GET", "/health").status, 200);
  EXPECT_TRUE(json::parse(Request("GET", "/status").body)["needs_resync"].empty());
}

}  // namespace
}  // namespace zonemesh
