// Knowledge-graph candidates: items whose entities share a neighbour (actor, director, writer,
// genre...) with the entities of the user's recent positive items, two KG hops:
// (seed)-[:ABOUT]->(e)-[:KG]-(x)-[:KG]-(e2)<-[:ABOUT]-(rec). Hubs are damped by degree.
// Returns: item_id, score, because (seed ids), via (relations, at most 3).
// Params: $user_id, $type_weights, $history, $max_degree (skip hub entities above it), $limit.
MATCH (u:User {id: $user_id})-[r:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
WHERE coalesce($type_weights[type(r)], 0.0) > 0 AND (type(r) <> 'RATED' OR coalesce(r.value, 5) >= 3)
WITH u, seed, r ORDER BY r.ts DESC LIMIT $history
MATCH (seed)-[:ABOUT]->(e:Entity)-[k:KG]->(x:Entity)
WITH u, seed, e, x, k, COUNT { (x)<-[:KG]-() } AS deg
WHERE deg <= $max_degree
MATCH (x)<-[:KG]-(e2:Entity)<-[:ABOUT]-(rec:Item)
WHERE rec <> seed AND e2 <> e AND coalesce(rec.available, true)
  AND NOT EXISTS { (u)-[:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(rec) }
WITH rec, seed, k.relation AS relation, 1.0 / log(2.0 + deg) AS w
WITH rec, sum(w) AS score, collect(DISTINCT seed.id)[0..3] AS because, collect(DISTINCT relation)[0..3] AS via
RETURN rec.id AS item_id, score, because, via
ORDER BY score DESC, item_id
LIMIT $limit
