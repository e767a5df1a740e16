// Content candidates for a user: items sharing tags, categories or linked KG entities with the
// user's $history most recent positive items. Each shared node counts 1/log(2 + its degree), so
// a tag shared by few items says more than a category shared by hundreds.
// Returns: item_id, score, because (seed item ids, at most 3), via (shared names, at most 3).
// Params: $user_id, $type_weights (map type -> weight), $history, $limit.
MATCH (u:User {id: $user_id})-[r:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
WHERE coalesce($type_weights[type(r)], 0.0) > 0 AND (type(r) <> 'RATED' OR coalesce(r.value, 5) >= 3)
WITH u, seed, r ORDER BY r.ts DESC LIMIT $history
MATCH (seed)-[:HAS_TAG|IN_CATEGORY|ABOUT]->(c)<-[:HAS_TAG|IN_CATEGORY|ABOUT]-(rec:Item)
WHERE rec <> seed AND coalesce(rec.available, true)
WITH u, rec, seed, c, 1.0 / log(2.0 + COUNT { (c)<-[:HAS_TAG|IN_CATEGORY|ABOUT]-() }) AS w
WHERE NOT EXISTS { (u)-[:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(rec) }
WITH rec, sum(w) AS score, collect(DISTINCT seed.id)[0..3] AS because,
     collect(DISTINCT coalesce(c.name, c.id))[0..3] AS via
RETURN rec.id AS item_id, score, because, via
ORDER BY score DESC, item_id
LIMIT $limit
