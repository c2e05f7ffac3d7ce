// Row versions and version vectors (schema/version.h): the total order of
// versions every node must agree on, the causal comparison of version
// vectors, their join, and their JSON form.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "schema/version.h"

namespace zonemesh::schema {
namespace {

using Order = VersionVector::Order;

VersionVector VV(std::initializer_list<std::pair<const std::string, int64_t>> entries) {
  VersionVector vv;
  for (const auto& [node, hlc] : entries) vv.Set(node, hlc);
  return vv;
}

// ---------------------------------------------------------------- Version --

TEST(VersionTest, HigherClockWinsWhateverTheNode) {
  Version early{100, "zz"};
  Version late{101, "aa"};
  EXPECT_LT(early, late);
  EXPECT_GT(late, early);
  EXPECT_FALSE(late < early);
}

TEST(VersionTest, NodeIdBreaksClockTies) {
  Version a{500, "ns1"};
  Version b{500, "ns2"};
  EXPECT_LT(a, b);
  EXPECT_FALSE(b < a);
  EXPECT_NE(a, b);
}

TEST(VersionTest, EqualOnlyWhenClockAndNodeAreEqual) {
  EXPECT_EQ((Version{7, "ns1"}), (Version{7, "ns1"}));
  EXPECT_NE((Version{7, "ns1"}), (Version{8, "ns1"}));
  EXPECT_NE((Version{7, "ns1"}), (Version{7, "ns10"}));
  EXPECT_FALSE((Version{7, "ns1"}) < (Version{7, "ns1"}));
}

TEST(VersionTest, SortingGivesTheSameTotalOrderFromAnyStart) {
  std::vector<Version> v = {{3, "b"}, {1, "z"}, {3, "a"}, {2, "m"}, {1, "a"}, {0, ""}};
  const std::vector<Version> expected = {{0, ""}, {1, "a"}, {1, "z"}, {2, "m"}, {3, "a"}, {3, "b"}};
  std::vector<Version> shuffled = v;
  std::reverse(shuffled.begin(), shuffled.end());
  std::sort(v.begin(), v.end());
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(v, expected);
  EXPECT_EQ(shuffled, expected);
}

TEST(VersionTest, ZeroAndToString) {
  EXPECT_TRUE(Version{}.IsZero());
  EXPECT_FALSE((Version{0, "ns1"}).IsZero());
  EXPECT_FALSE((Version{1, ""}).IsZero());
  EXPECT_EQ((Version{1700000000000000, "ns1"}).ToString(), "1700000000000000@ns1");
}

// ------------------------------------------------------- VersionVector --

TEST(VersionVectorTest, GetOfAMissingNodeIsZero) {
  VersionVector vv = VV({{"ns1", 5}});
  EXPECT_EQ(vv.Get("ns1"), 5);
  EXPECT_EQ(vv.Get("ns2"), 0);
  vv.Set("ns1", 9);
  EXPECT_EQ(vv.Get("ns1"), 9);
  EXPECT_TRUE(VersionVector().empty());
  EXPECT_FALSE(vv.empty());
}

TEST(VersionVectorCompareTest, Equal) {
  EXPECT_EQ(VersionVector().Compare(VersionVector()), Order::kEqual);
  EXPECT_EQ(VV({{"a", 1}, {"b", 2}}).Compare(VV({{"b", 2}, {"a", 1}})), Order::kEqual);
}

TEST(VersionVectorCompareTest, BeforeWhenTheOtherHasSeenMore) {
  EXPECT_EQ(VV({{"a", 1}}).Compare(VV({{"a", 2}})), Order::kBefore);
  EXPECT_EQ(VV({{"a", 1}, {"b", 3}}).Compare(VV({{"a", 2}, {"b", 3}})), Order::kBefore);
  EXPECT_EQ(VersionVector().Compare(VV({{"a", 1}})), Order::kBefore);
}

TEST(VersionVectorCompareTest, AfterWhenThisHasSeenMore) {
  EXPECT_EQ(VV({{"a", 2}}).Compare(VV({{"a", 1}})), Order::kAfter);
  EXPECT_EQ(VV({{"a", 1}}).Compare(VersionVector()), Order::kAfter);
}

TEST(VersionVectorCompareTest, ConcurrentWhenEachHasSomethingTheOtherLacks) {
  EXPECT_EQ(VV({{"a", 2}, {"b", 1}}).Compare(VV({{"a", 1}, {"b", 2}})), Order::kConcurrent);
  EXPECT_EQ(VV({{"a", 1}}).Compare(VV({{"b", 1}})), Order::kConcurrent);
}

TEST(VersionVectorCompareTest, MissingEntriesCountAsZero) {
  // An entry the other vector lacks is compared against 0.
  EXPECT_EQ(VV({{"a", 1}}).Compare(VV({{"a", 1}, {"b", 2}})), Order::kBefore);
  EXPECT_EQ(VV({{"a", 1}, {"b", 2}}).Compare(VV({{"a", 1}})), Order::kAfter);
  EXPECT_EQ(VV({{"a", 1}, {"b", 2}}).Compare(VV({{"a", 2}})), Order::kConcurrent);
  // An explicit zero is the same as no entry.
  EXPECT_EQ(VV({{"a", 1}, {"b", 0}}).Compare(VV({{"a", 1}})), Order::kEqual);
  EXPECT_EQ(VV({{"a", 1}}).Compare(VV({{"a", 1}, {"b", 0}})), Order::kEqual);
}

TEST(VersionVectorCompareTest, IsAntisymmetric) {
  const std::vector<VersionVector> all = {
      VersionVector(),          VV({{"a", 1}}),           VV({{"a", 2}}),
      VV({{"b", 1}}),           VV({{"a", 1}, {"b", 1}}), VV({{"a", 2}, {"b", 1}}),
      VV({{"a", 1}, {"b", 2}}), VV({{"c", 5}}),           VV({{"a", 0}})};
  for (const VersionVector& x : all) {
    for (const VersionVector& y : all) {
      Order xy = x.Compare(y), yx = y.Compare(x);
      SCOPED_TRACE(x.ToJson() + " vs " + y.ToJson());
      switch (xy) {
        case Order::kEqual:
          EXPECT_EQ(yx, Order::kEqual);
          break;
        case Order::kBefore:
          EXPECT_EQ(yx, Order::kAfter);
          break;
        case Order::kAfter:
          EXPECT_EQ(yx, Order::kBefore);
          break;
        case Order::kConcurrent:
          EXPECT_EQ(yx, Order::kConcurrent);
          break;
      }
    }
  }
}

TEST(VersionVectorJoinTest, IsThePointwiseMaximum) {
  VersionVector x = VV({{"a", 3}, {"b", 1}});
  VersionVector y = VV({{"b", 5}, {"c", 2}});
  VersionVector j = x.Join(y);
  EXPECT_EQ(j, VV({{"a", 3}, {"b", 5}, {"c", 2}}));
  // The inputs are untouched.
  EXPECT_EQ(x, VV({{"a", 3}, {"b", 1}}));
  EXPECT_EQ(y, VV({{"b", 5}, {"c", 2}}));
}

TEST(VersionVectorJoinTest, IsCommutativeAndIdempotent) {
  VersionVector x = VV({{"a", 3}, {"b", 1}, {"d", 9}});
  VersionVector y = VV({{"b", 5}, {"c", 2}, {"d", 4}});
  EXPECT_EQ(x.Join(y), y.Join(x));
  EXPECT_EQ(x.Join(x), x);
  EXPECT_EQ(x.Join(VersionVector()), x);
  EXPECT_EQ(VersionVector().Join(x), x);
}

TEST(VersionVectorJoinTest, HasSeenBothInputs) {
  VersionVector x = VV({{"a", 2}, {"b", 1}});
  VersionVector y = VV({{"a", 1}, {"b", 2}});
  ASSERT_EQ(x.Compare(y), Order::kConcurrent);
  VersionVector j = x.Join(y);
  EXPECT_EQ(x.Compare(j), Order::kBefore);
  EXPECT_EQ(y.Compare(j), Order::kBefore);
  EXPECT_EQ(j.Compare(x), Order::kAfter);
}

TEST(VersionVectorTest, MaxHlc) {
  EXPECT_EQ(VersionVector().MaxHlc(), 0);
  EXPECT_EQ(VV({{"a", 3}, {"b", 17}, {"c", 5}}).MaxHlc(), 17);
}

TEST(VersionVectorJsonTest, RoundTrips) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  VersionVector vv = VV({{"ns1", 1700000000000000}, {"ns-2.example_x", 1}, {"z", big}});
  std::string text = vv.ToJson();
  EXPECT_EQ(VersionVector::FromJson(text), vv);
  nlohmann::json j = nlohmann::json::parse(text);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 3u);
  EXPECT_EQ(j["ns1"].get<int64_t>(), 1700000000000000);
  EXPECT_EQ(j["z"].get<int64_t>(), big);
  EXPECT_EQ(VersionVector::FromJson(VersionVector().ToJson()), VersionVector());
  EXPECT_EQ(nlohmann::json::parse(VersionVector().ToJson()), nlohmann::json::object());
}

TEST(VersionVectorJsonTest, ParsesWhatOtherWritersProduce) {
  // Databases write their own JSON (spaces, key order).
  VersionVector vv = VersionVector::FromJson(" { \"b\" : 2 , \"a\": 1 } ");
  EXPECT_EQ(vv, VV({{"a", 1}, {"b", 2}}));
}

TEST(VersionVectorJsonTest, RejectsNonObjects) {
  for (const char* text : {"[]", "[1, 2]", "5", "\"ns1\"", "null", "true"}) {
    EXPECT_THROW(VersionVector::FromJson(text), std::invalid_argument) << text;
  }
}

TEST(VersionVectorJsonTest, RejectsNonIntegerEntries) {
  for (const char* text : {R"({"a": 1.5})", R"({"a": "1"})", R"({"a": true})", R"({"a": null})",
                           R"({"a": [1]})", R"({"a": {}})", R"({"a": 1, "b": 2.0})"}) {
    EXPECT_THROW(VersionVector::FromJson(text), std::invalid_argument) << text;
  }
}

TEST(VersionVectorJsonTest, RejectsInvalidJson) {
  for (const char* text : {"", "{", "{\"a\": 1", "not json", "{'a': 1}"}) {
    EXPECT_THROW(VersionVector::FromJson(text), std::invalid_argument) << text;
  }
}

}  // namespace
}  // namespace zonemesh::schema
