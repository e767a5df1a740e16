// Time-decayed popularity per category in one pass (the engine keeps it in memory and refreshes
// it periodically). See recs/popular for the weighting.
// Returns: category, items (list of {item_id, score}, best first, at most $per_category).
// Params: $since, $now, $half_life_s, $type_weights, $per_category.
MATCH (u:User)-[r:RATED|VIEWED|CLICKED|PURCHASED]->(i:Item)-[:IN_CATEGORY]->(c:Category)
WHERE r.ts >= $since AND coalesce(i.available, true)
WITH c, i, sum(coalesce($type_weights[type(r)], 0.0) * exp(-0.6931 * abs($now - r.ts) / $half_life_s)) AS score
WHERE score > 0
WITH c, i, score ORDER BY score DESC
WITH c, collect({item_id: i.id, score: score})[0..$per_category] AS items
RETURN c.name AS category, items
ORDER BY category
