// The daemon's configuration: one JSON file, loaded and validated once at
// start. Every field below has its default and meaning where it is declared;
// unknown keys, missing keys and wrong types are errors naming the key.
#ifndef ZONEMESH_REPLICATOR_CONFIG_H_
#define ZONEMESH_REPLICATOR_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "db/open.h"
#include "schema/version.h"

namespace zonemesh {

// A configuration problem; what() names the file and the key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
};

// TLS for the peer endpoint and for pushes to https:// peers.
struct TlsConfig {
  std::string cert;  // PEM certificate (chain) this node presents
  std::string key;   // its PEM private key
  // PEM CA bundle the mesh's certificates chain to: peers' server
  // certificates are verified against it (and clients' when required).
  std::string ca;
  // Refuse TLS clients without a certificate the CA signed (mutual TLS).
  bool require_client_cert = false;
  bool enabled() const { return !cert.empty(); }
};

struct PeerConfig {
  std::string id;   // the peer's node_id
  std::string url;  // as written, e.g. "http://10.0.0.2:8301"
  // Parsed from url:
  std::string scheme;  // "http" or "https"
  Endpoint endpoint;
  std::string base_path;  // "" or "/prefix" (no trailing slash)
};

struct ConflictConfig {
  // Strategy for every table without its own entry: latest-wins, priority,
  // soa-serial, manual or custom.
  std::string strategy = "latest-wins";
  // Per-table strategies: table name -> strategy name.
  std::map<std::string, std::string> tables;
  // "priority": node ids, highest priority first (required when used).
  std::vector<std::string> priority;
  // "custom": the plug-in shared library (required when used; relative to
  // the config file).
  std::string plugin;
  // Conflict log entries older than this are deleted (changes parked for an
  // operator stay until resolved).
  int64_t retention_seconds = 30 * 86400;
};

struct AuthConfig {
  // The mesh secret every node shares (from "secret" or "secret_file");
  // empty: peers are not authenticated.
  std::string secret;
  // Signed requests older or newer than this are refused.
  int max_clock_skew_seconds = 300;
  bool enabled() const { return !secret.empty(); }
};

// The local PowerDNS's HTTP API, told about every applied change so that
// its caches do not hide it ("powerdns": {...}).
struct PowerDnsConfig {
  // e.g. "http://127.0.0.1:8081"; empty: PowerDNS is not told.
  std::string api_url;
  Endpoint api_endpoint;   // parsed from api_url
  std::string api_key;     // from "api_key" or "api_key_file"
  std::string server_id = "localhost";
  // Also ask PowerDNS to send NOTIFY for changed zones (to AXFR secondaries).
  bool notify = false;
  bool enabled() const { return !api_url.empty(); }
};

// Anti-entropy ("anti_entropy"): each node compares its zones with each
// peer every interval_seconds (0: never) through per-zone hash trees, and
// pulls the peer's states of the rows that differ (replicator/anti_entropy.h).
struct AntiEntropyConfig {
  int64_t interval_seconds = 60;
  // Rows that changed on either side within this time may still be in
  // flight: they are left to replication, not reported or repaired.
  int64_t settle_seconds = 30;
  // A zone's tree is hashed again after a change reaches it, and at the
  // latest after this long (which catches writes made behind zonemesh's
  // back while it runs).
  int64_t rehash_seconds = 3600;
};

struct Config {
  std::string file;  // the config file it was loaded from ("" if built in code)

  // This node's id: [A-Za-z0-9][A-Za-z0-9._-]*, at most 63 characters. It is
  // the origin of every local change and the tie-break of versions.
  std::string node_id;

  // Address the peer and status endpoints listen on, "host:port".
  Endpoint listen;

  // When set, /status, /health and /metrics are served only here (e.g. a
  // loopback address for local monitoring) and `listen` serves peers only.
  std::optional<Endpoint> status_listen;

  // Peer authentication ("auth": {"secret_file": PATH} or {"secret": "..."}).
  AuthConfig auth;

  // TLS ("tls": {"cert", "key", "ca", "require_client_cert"}): the listen
  // address serves HTTPS, and https:// peer URLs are verified.
  TlsConfig tls;

  PowerDnsConfig powerdns;

  // GET /health fails (503) on the node that misses data: while the
  // database does not answer; when this node is behind more than
  // health_max_lagging_peers peers (a peer says this node lacks changes of
  // its own older than health_max_lag_seconds, or the peer is silent here
  // while another peer hears it); when it hears none of its peers (with two
  // peers or more). A node whose own changes do not reach a peer stays
  // healthy: the peer is the one behind (docs/operations.md).
  double health_max_lag_seconds = 60;
  int health_max_lagging_peers = 0;

  db::DatabaseConfig database;

  std::vector<PeerConfig> peers;

  ConflictConfig conflict;

  // Largest number of changes in one pushed batch. A commit round larger than
  // this travels in several batches and is applied atomically when complete.
  int batch_max_changes = 1000;

  // Largest body of one pushed batch, in bytes (a round's changes are cut
  // before this is exceeded; a single larger change still travels alone).
  int64_t batch_max_bytes = 4 << 20;

  // Largest request body the daemon accepts; larger requests get 413.
  int64_t max_request_bytes = 32 << 20;

  // Open connections the listener keeps at once; more are closed on accept
  // (each also closes after request_timeout_ms without a complete request).
  int max_connections = 256;

  // How often the outbox is checked for new commits on databases that cannot
  // signal them (MySQL); SQLite checks a change counter this often, and
  // PostgreSQL is woken by NOTIFY and checks this often as a safety net.
  int poll_interval_ms = 10;

  // Back-off between failed pushes to a peer: doubles from min to max.
  int retry_min_ms = 100;
  int retry_max_ms = 5000;

  // Deadline for connecting to a peer and for each request/response.
  int request_timeout_ms = 10000;

  // A link with nothing to push sends a heartbeat this often (the sender's
  // position and what the peer has not acknowledged); a heartbeat gets
  // link_timeout_ms to be answered. A node that hears nothing from a peer
  // (no push, no heartbeat) for link_timeout_ms reports it silent (log,
  // /status, /metrics), and a sender whose heartbeat is not answered in
  // that time reports the link down.
  int heartbeat_interval_ms = 1000;
  int link_timeout_ms = 5000;  // at least twice heartbeat_interval_ms

  AntiEntropyConfig anti_entropy;

  // Acknowledged outbox rows older than this are deleted.
  int64_t outbox_retention_seconds = 3600;

  // How far back the mesh keeps history: outbox rows (acknowledged or not)
  // and tombstones of deleted rows older than this are deleted, and changes
  // older than this are refused. A node cut off for longer cannot catch up
  // incrementally (it could resurrect deleted rows): it is marked
  // "needs-resync" on both sides and must `zonemesh join` again. Zone
  // tombstones (incarnations) are kept forever.
  int64_t history_retention_seconds = 7 * 86400;

  // A daemon starting on an empty database first loads a snapshot from a
  // peer (`zonemesh join`), retrying until one answers; /health fails until
  // then. Two empty nodes starting together satisfy each other. false: a
  // node that may start empty and alone.
  bool initial_join = true;

  // trace, debug, info, warn, error.
  std::string log_level = "info";
};

// Loads and validates `path`. Relative paths inside (database.path) are
// resolved against the file's directory. Throws ConfigError.
Config LoadConfig(const std::string& path);

// Parses a config from JSON text; `base_dir` resolves relative paths and
// `file` names the source in error messages. Throws ConfigError.
Config ParseConfig(const std::string& json_text, const std::string& base_dir,
                   const std::string& file);

// True for a valid node id (schema/version.h).
using schema::IsValidNodeId;

// Parses "host:port" or "[v6]:port". Throws std::invalid_argument.
Endpoint ParseEndpoint(const std::string& text);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_CONFIG_H_
