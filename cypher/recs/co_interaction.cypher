// Collaborative candidates for a user: "users who interacted with your items also interacted
// with". Seeds are the user's $history most recent positive interactions; for each seed at
// most $fanout co-interacting users (most recent first); their items are scored by interaction
// type weight and time decay. Items the user already interacted with are excluded.
// Returns: item_id, score, because (seed item ids, strongest first, at most 3).
// Params: $user_id, $type_weights (map type -> weight), $now, $half_life_s, $history,
//   $fanout, $limit.
MATCH (u:User {id: $user_id})-[r:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
WHERE coalesce($type_weights[type(r)], 0.0) > 0 AND (type(r) <> 'RATED' OR coalesce(r.value, 5) >= 3)
WITH u, seed, r ORDER BY r.ts DESC LIMIT $history
CALL (u, seed) {
  MATCH (seed)<-[r1:RATED|VIEWED|CLICKED|PURCHASED]-(other:User)
  WHERE other <> u
  RETURN other ORDER BY r1.ts DESC LIMIT $fanout
}
MATCH (other)-[r2:RATED|VIEWED|CLICKED|PURCHASED]->(rec:Item)
WHERE rec <> seed AND coalesce(rec.available, true)
WITH u, rec, seed,
     sum(coalesce($type_weights[type(r2)], 0.0) * exp(-0.6931 * abs($now - r2.ts) / $half_life_s)) AS w
WHERE w > 0 AND NOT EXISTS { (u)-[:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(rec) }
WITH rec, seed, w ORDER BY w DESC
WITH rec, sum(w) AS score, collect(seed.id) AS seeds
RETURN rec.id AS item_id, score, seeds[0..3] AS because
ORDER BY score DESC, item_id
LIMIT $limit
