// Time-decayed popularity over the interactions since $since: each interaction counts its
// type weight times 2^(-(now - ts) / half_life). Overall, or within one category when
// $category is not null.
// Returns: item_id, score, interactions.
// Params: $since, $now, $half_life_s, $type_weights, $category (string or null), $limit.
MATCH (u:User)-[r:RATED|VIEWED|CLICKED|PURCHASED]->(i:Item)
WHERE r.ts >= $since AND coalesce(i.available, true)
  AND ($category IS NULL OR EXISTS { (i)-[:IN_CATEGORY]->(:Category {name: $category}) })
WITH i, sum(coalesce($type_weights[type(r)], 0.0) * exp(-0.6931 * abs($now - r.ts) / $half_life_s)) AS score,
     count(r) AS interactions
WHERE score > 0
RETURN i.id AS item_id, score, interactions
ORDER BY score DESC, item_id
LIMIT $limit
