// For Neo4j Browser: what the request-time neighbour sources compute — the materialised
// neighbours ({{nrel}}: CO_INTERACTED or SIMILAR_CONTENT) of weighted seed items, summed (the
// engine does the same sum in memory over cached neighbour lists, see recs/neighbour_lists).
// Returns: item_id, score, because (the strongest seeds, at most 3).
// Params: $seeds: list of {id, w}; $per_seed (neighbours per seed); $limit.
UNWIND $seeds AS seed
MATCH (s:Item {id: seed.id})-[n:{{nrel}}]->(rec:Item)
WHERE n.rank < $per_seed AND coalesce(rec.available, true)
WITH rec, seed.id AS sid, seed.w * n.score AS w
WHERE NOT rec.id IN [x IN $seeds | x.id]
WITH rec, sid, w ORDER BY w DESC
WITH rec, sum(w) AS score, collect(sid)[0..3] AS because
RETURN rec.id AS item_id, score, because
ORDER BY score DESC, item_id
LIMIT $limit
