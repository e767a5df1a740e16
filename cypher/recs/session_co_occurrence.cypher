// Session candidates: items that appeared in the same sessions as the given items (the last
// items of the current session), most recent sessions first, each co-occurrence damped by the
// length of that session. The given items are excluded.
// Returns: item_id, score, because (given item ids, at most 3).
// Params: $item_ids (list), $fanout (sessions per item, most recent first), $limit.
UNWIND $item_ids AS seed_id
MATCH (seed:Item {id: seed_id})
CALL (seed) {
  MATCH (seed)<-[r1:VIEWED|CLICKED|PURCHASED|RATED]-(u:User)
  WHERE r1.session IS NOT NULL
  RETURN u, r1.session AS session ORDER BY r1.ts DESC LIMIT $fanout
}
MATCH (u)-[r2:VIEWED|CLICKED|PURCHASED|RATED]->(rec:Item)
WHERE r2.session = session AND NOT rec.id IN $item_ids AND coalesce(rec.available, true)
WITH seed, session, collect(DISTINCT rec) AS recs
UNWIND recs AS rec
WITH rec, seed, 1.0 / log(2.0 + size(recs)) AS w
WITH rec, sum(w) AS score, collect(DISTINCT seed.id)[0..3] AS because
RETURN rec.id AS item_id, score, because
ORDER BY score DESC, item_id
LIMIT $limit
