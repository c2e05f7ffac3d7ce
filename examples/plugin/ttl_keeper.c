/*
 * ttl-keeper: an example zonemesh conflict plug-in.
 *
 * For concurrent edits of the same record, the newer row wins (as with
 * latest-wins) but its TTL is the larger of the two: an operator raising a
 * TTL on one node is never undone by a concurrent edit elsewhere. Deletes
 * and other tables follow latest-wins.
 *
 * The decision is the same whichever side is local, and it is a join (the
 * newest row with the largest TTL), so any number of concurrent edits
 * converge in any order.
 *
 * Build: make          (or: cc -O2 -shared -fPIC -I../../conflict -o ttl_keeper.so ttl_keeper.c)
 * Use:   "conflict": {"strategy": "latest-wins", "tables": {"records": "custom"},
 *                     "plugin": "/path/to/ttl_keeper.so"}
 */
#include <stdlib.h>
#include <string.h>

#include "zonemesh_plugin.h"

int zonemesh_plugin_abi(void) { return ZONEMESH_PLUGIN_ABI; }

const char* zonemesh_plugin_name(void) { return "ttl-keeper/1"; }

/* 1 when the remote version (hlc, then node id) is greater than the local one. */
static int remote_is_newer(const zonemesh_conflict* c) {
  if (c->remote.hlc != c->local.hlc) return c->remote.hlc > c->local.hlc;
  return strcmp(c->remote.node, c->local.node) > 0;
}

static long column_index(const zonemesh_conflict* c, const char* name) {
  for (size_t i = 0; i < c->column_count; ++i) {
    if (strcmp(c->column_names[i], name) == 0) return (long)i;
  }
  return -1;
}

static char* copy(const char* s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char* out = malloc(n);
  if (out) memcpy(out, s, n);
  return out;
}

int zonemesh_resolve(const zonemesh_conflict* c, zonemesh_decision* d) {
  const int newer = remote_is_newer(c);
  const long ttl = column_index(c, "ttl");
  if (strcmp(c->table, "records") != 0 || ttl < 0 || !c->local.exists || !c->remote.exists ||
      !c->local.values || !c->remote.values) {
    d->resolution = newer ? ZONEMESH_TAKE_REMOTE : ZONEMESH_KEEP_LOCAL;
    d->reason = copy(newer ? "ttl-keeper: remote is newer" : "ttl-keeper: local is newer");
    return 0;
  }
  const char* const* winner = newer ? c->remote.values : c->local.values;
  const char* lt = c->local.values[ttl];
  const char* rt = c->remote.values[ttl];
  const long long l = lt ? atoll(lt) : 0, r = rt ? atoll(rt) : 0;
  const char* larger = l >= r ? lt : rt;

  d->merged = calloc(c->column_count, sizeof(char*));
  if (!d->merged) return 1;
  d->merged_count = c->column_count;
  for (size_t i = 0; i < c->column_count; ++i) {
    d->merged[i] = copy((long)i == ttl ? larger : winner[i]);
  }
  d->resolution = ZONEMESH_MERGE;
  d->reason = copy("ttl-keeper: newer row with the larger TTL");
  return 0;
}

void zonemesh_release(zonemesh_decision* d) {
  for (size_t i = 0; d->merged && i < d->merged_count; ++i) free(d->merged[i]);
  free(d->merged);
  free(d->reason);
}
