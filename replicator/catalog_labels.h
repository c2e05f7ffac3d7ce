// Catalog zones (PowerDNS 4.7+ producers) identical on every node.
//
// PowerDNS names a member zone in its producer catalog by a "unique" label.
// Unless the member's options set one ({"producer": {"unique": ...}} in
// domains.options), PowerDNS derives it from the zone's node-local
// domains.id, so every node would publish a different catalog for the same
// members. zonemesh pins the label: a member without one gets a label that
// is a function of replicated data only (the zone's name and incarnation),
// written as an ordinary local change that replicates like any other (two
// nodes writing it at once write the same value). The producer's
// CATALOG-HASH metadata, a hash over the members' local ids, is node-local
// (schema/spec.cc): each node keeps its own.
#ifndef ZONEMESH_REPLICATOR_CATALOG_LABELS_H_
#define ZONEMESH_REPLICATOR_CATALOG_LABELS_H_

#include <cstdint>
#include <string>

#include "db/connection.h"
#include "schema/version.h"

namespace zonemesh {

// The member label of `zone` in its incarnation `epoch`: base32hex of
// SHA-1(zone in DNS wire format, lower case || incarnation), 32 characters,
// like the labels PowerDNS derives itself.
std::string CatalogMemberLabel(const std::string& zone, const schema::Version& epoch);

// Writes the pinned label into the options of every catalog member that
// has none, through `conn` (a session whose writes are captured), one
// transaction. Returns the members updated.
int64_t PinCatalogLabels(db::Connection& conn);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_CATALOG_LABELS_H_
