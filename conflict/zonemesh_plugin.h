/*
 * zonemesh conflict plug-in ABI, version 1.
 *
 * A plug-in is a shared library that decides conflicts for the tables
 * configured with the "custom" strategy:
 *
 *   "conflict": {"strategy": "latest-wins",
 *                "tables": {"records": "custom"},
 *                "plugin": "/usr/lib/zonemesh/my-plugin.so"}
 *
 * It exports the four functions declared at the end of this header, with C
 * linkage. zonemesh loads it once at start, checks zonemesh_plugin_abi(), and
 * includes zonemesh_plugin_name() in the fingerprint peers compare: every
 * node of a mesh must load a plug-in of the same name (put a version in it).
 *
 * zonemesh_resolve() is called when an incoming change is concurrent with the
 * row this node holds (neither has seen the other). It MUST be deterministic
 * and symmetric: every node sees the same two states, but which one is
 * "local" depends on the node, and all nodes must end with the same row. It
 * must also behave like taking the greater of two states under a total order
 * (or, for merges, like a join: commutative, associative, idempotent), so that
 * three or more concurrent states converge whatever order they arrive in.
 * It is called by one thread at a time, must not block, and must not call
 * back into zonemesh. examples/plugin/ holds a complete plug-in.
 *
 * Values are text: integers in decimal, booleans "0"/"1", a NULL pointer for
 * SQL NULL. Columns are the table's replicated columns in the order
 * zonemesh's table spec gives (`column_names`); the zone (for zone
 * children) is given separately and cannot be changed by a merge.
 */
#ifndef ZONEMESH_PLUGIN_H_
#define ZONEMESH_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZONEMESH_PLUGIN_ABI 1

typedef struct zonemesh_row {
  int exists;                 /* 0: deleted (or never existed here) */
  const char* const* values;  /* column_count values; NULL when nothing is known */
  int64_t hlc;                /* version of this state: clock in microseconds */
  const char* node;           /* version of this state: node that wrote it */
} zonemesh_row;

typedef struct zonemesh_conflict {
  const char* table;               /* "records", "domains", ... */
  const char* key;                 /* the natural key, as zonemesh encodes it */
  const char* zone;                /* zone name for zone children, else NULL */
  size_t column_count;
  const char* const* column_names;
  zonemesh_row local;              /* what this node holds */
  zonemesh_row remote;             /* what the incoming change says */
} zonemesh_conflict;

typedef enum zonemesh_resolution {
  ZONEMESH_KEEP_LOCAL = 0,
  ZONEMESH_TAKE_REMOTE = 1,
  ZONEMESH_MERGE = 2 /* the row exists with `merged` values */
} zonemesh_resolution;

typedef struct zonemesh_decision {
  zonemesh_resolution resolution;
  /* ZONEMESH_MERGE: merged_count (= column_count) values allocated by the
   * plug-in (NULL entry for SQL NULL). Natural-key columns must keep the
   * conflict's key. */
  char** merged;
  size_t merged_count;
  /* Optional one-line reason for the conflict log, allocated by the plug-in. */
  char* reason;
} zonemesh_decision;

/* Returns ZONEMESH_PLUGIN_ABI. */
int zonemesh_plugin_abi(void);

/* A stable name with a version, e.g. "ttl-keeper/1". */
const char* zonemesh_plugin_name(void);

/* Fills *decision (zero-initialized by the caller). Returns 0 on success;
 * any other value is an error: zonemesh then falls back to latest-wins for
 * this conflict and logs it. */
int zonemesh_resolve(const zonemesh_conflict* conflict, zonemesh_decision* decision);

/* Frees what zonemesh_resolve allocated in *decision. */
void zonemesh_release(zonemesh_decision* decision);

#ifdef __cplusplus
}
#endif

#endif /* ZONEMESH_PLUGIN_H_ */
