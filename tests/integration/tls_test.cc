// Peers over TLS with client certificates and signed requests: a mesh
// converges; a node whose certificate another CA signed is refused both
// ways; plain HTTP is refused by a TLS listener.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "replicator/http.h"
#include "tests/support/cluster.h"
#include "tests/support/pdns_writes.h"

namespace zonemesh::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

void Run(const std::string& cmd) {
  ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

// A CA and node certificates for 127.0.0.1, made with the openssl tool.
class Pki {
 public:
  explicit Pki(std::string dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  void MakeCa(const std::string& name) {
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=" +
        name + " -keyout " + Path(name, "key") + " -out " + Path(name, "pem"));
  }
  void MakeCert(const std::string& name, const std::string& ca) {
    std::ofstream(Path(name, "ext")) << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
    Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
        " -keyout " + Path(name, "key") + " -out " + Path(name, "csr"));
    Run("openssl x509 -req -days 2 -in " + Path(name, "csr") + " -CA " + Path(ca, "pem") + " -CAkey " +
        Path(ca, "key") + " -CAcreateserial -extfile " + Path(name, "ext") + " -out " + Path(name, "pem"));
  }
  std::string Path(const std::string& name, const std::string& ext) const {
    return dir_ + "/" + name + "." + ext;
  }
  json Tls(const std::string& node, const std::string& ca) const {
    return {{"cert", Path(node, "pem")}, {"key", Path(node, "key")}, {"ca", Path(ca, "pem")},
            {"require_client_cert", true}};
  }

 private:
  std::string dir_;
};

struct TlsNode {
  std::unique_ptr<Node> node;
  uint16_t port;
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ScratchDir() + "/tls-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    pki_ = std::make_unique<Pki>(dir_ + "/pki");
    pki_->MakeCa("mesh-ca");
    pki_->MakeCa("other-ca");
    for (const char* n : {"a", "b"}) pki_->MakeCert(n, "mesh-ca");
    pki_->MakeCert("c", "other-ca");
  }

  // Nodes with https peers, mutual TLS against `ca`, and a mesh secret.
  std::vector<TlsNode> MakeNodes(const std::vector<std::pair<std::string, std::string>>& ids_and_ca) {
    std::vector<TlsNode> nodes;
    for (const auto& [id, ca] : ids_and_ca) {
      TlsNode t{std::make_unique<Node>(id, dir_ + "/" + id, FreeLoopbackPort()), 0};
      t.node->UseStatusPort(FreeLoopbackPort());
      nodes.push_back(std::move(t));
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      std::vector<PeerRef> peers;
      for (size_t j = 0; j < nodes.size(); ++j) {
        if (i == j) continue;
        peers.push_back({nodes[j].node->id(), "https://127.0.0.1:" + std::to_string(nodes[j].node->port())});
      }
      nodes[i].node->WriteConfig(peers, json{{"tls", pki_->Tls(nodes[i].node->id(), ids_and_ca[i].second)},
                                             {"auth", {{"secret", "a-mesh-secret-of-sufficient-length"}}},
                                             {"initial_join", false}});
      nodes[i].node->Install();
    }
    return nodes;
  }

  std::string dir_;
  std::unique_ptr<Pki> pki_;
};

json PeerOf(Node& n, const std::string& id) {
  const json status = n.Status();
  for (const json& p : status["peers"])
    if (p["id"] == id) return p;
  return nullptr;
}

TEST_F(TlsTest, MeshOverMutualTlsConverges) {
  auto nodes = MakeNodes({{"a", "mesh-ca"}, {"b", "mesh-ca"}});
  Node& a = *nodes[0].node;
  Node& b = *nodes[1].node;
  a.Start();
  b.Start();
  {
    auto conn = a.Connect();
    PdnsWriter w(*conn);
    w.CreateZone("example.com");
    w.AddTsigKey("xfr", "hmac-sha256", "c2VjcmV0IG92ZXIgdGxz");
  }
  {
    auto conn = b.Connect();
    PdnsWriter(*conn).CreateZone("example.net");
  }
  ASSERT_TRUE(PollUntil([&] { return a.Checksum() == b.Checksum() && b.Dump().size() > 4; }, 60s))
      << a.LogTail() << b.LogTail();
  EXPECT_TRUE(PeerOf(a, "b")["connected"].get<bool>());
  EXPECT_TRUE(PeerOf(b, "a")["connected"].get<bool>());
  EXPECT_NE(a.Log().find("HTTPS, client certificates required"), std::string::npos);
}

TEST_F(TlsTest, PeerWithACertificateFromAnotherCaIsRefusedBothWays) {
  auto nodes = MakeNodes({{"a", "mesh-ca"}, {"c", "other-ca"}});
  Node& a = *nodes[0].node;
  Node& c = *nodes[1].node;
  a.Start();
  c.Start();
  {
    auto conn = a.Connect();
    PdnsWriter(*conn).CreateZone("from-a.example");
  }
  {
    auto conn = c.Connect();
    PdnsWriter(*conn).CreateZone("from-c.example");
  }
  // a does not trust c's server certificate; c's client certificate is
  // refused by a's listener.
  ASSERT_TRUE(PollUntil([&] {
    json p = PeerOf(a, "c");
    return p["last_error"].is_string() &&
           p["last_error"].get<std::string>().find("certificate verify failed") != std::string::npos;
  }, 30s)) << PeerOf(a, "c").dump();
  ASSERT_TRUE(PollUntil([&] {
    json p = PeerOf(c, "a");
    return p["last_error"].is_string() &&
           p["last_error"].get<std::string>().find("TLS handshake") != std::string::npos;
  }, 30s)) << PeerOf(c, "a").dump();
  EXPECT_FALSE(PeerOf(a, "c")["connected"].get<bool>());
  EXPECT_TRUE(PollUntil([&] { return PeerOf(a, "c")["queue_depth"].get<int64_t>() > 0; }, 30s));
  auto ca = a.Connect();
  EXPECT_EQ(ca->Query("SELECT COUNT(*) FROM domains WHERE name = 'from-c.example'")[0][0].AsInt(), 0);
  auto cc = c.Connect();
  EXPECT_EQ(cc->Query("SELECT COUNT(*) FROM domains WHERE name = 'from-a.example'")[0][0].AsInt(), 0);
}

TEST_F(TlsTest, PlainHttpToATlsListenerGetsNowhere) {
  auto nodes = MakeNodes({{"a", "mesh-ca"}, {"b", "mesh-ca"}});
  Node& a = *nodes[0].node;
  a.Start();
  auto before = a.Dump();
  HttpClient plain(Endpoint{"127.0.0.1", a.port()}, std::chrono::milliseconds(3000));
  EXPECT_THROW(plain.Request("POST", "/v1/push", "{}"), HttpError);
  EXPECT_EQ(a.Dump(), before);
  EXPECT_EQ(a.Http("GET", "/health").status, 200);  // the status port still answers
}

}  // namespace
}  // namespace zonemesh::testing
