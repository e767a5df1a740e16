// The API's start-up warm-up of Neo4j's write path (graphrec.engine.warmup.Warmup.writes): the
// shape of one recordInteraction, committed for real on nodes that only this warm-up uses. A
// node of its own (GraphrecMeta {key: $key}, unique per API process) is merged by its unique
// key, a relationship with an interaction's properties is created from it to a second node, and
// the previous round's relationship is deleted; repo/warm_commit_done removes both nodes.
// Rehearsals rolled back (AsyncGraphStore.rehearse) plan the real statements but never commit:
// after a Neo4j start the first commits are slow until Neo4j's JIT has compiled its commit path,
// which these commits do before the first client's.
// Returns: nothing.
// Params: $key (this process's warm-up key, starting 'warm-up:'), $ts (float), $round (int).
MERGE (m:GraphrecMeta {key: $key})
MERGE (s:GraphrecMeta {key: $key + ':session'})
SET m.last_at = $ts
WITH m, s
OPTIONAL MATCH (m)-[old:WARMED_UP]->(s)
DELETE old
CREATE (m)-[r:WARMED_UP {key: $key + ':' + toString($round)}]->(s)
SET r.ts = $ts, r.value = null, r.dwell = 12.5, r.session = $key, s.last_at = $ts
