// An item's neighbours by co-interaction: items that users who interacted with it also
// interacted with, weighted by interaction type and recency. Never the item itself.
// Returns: item_id, score, support (number of co-interacting users).
// Params: $item_id, $type_weights (map type -> weight), $now, $half_life_s, $fanout (users
//   sampled, most recent first), $limit.
MATCH (seed:Item {id: $item_id})
CALL (seed) {
  MATCH (seed)<-[r:RATED|VIEWED|CLICKED|PURCHASED]-(u:User)
  WHERE coalesce($type_weights[type(r)], 0.0) > 0
  RETURN u ORDER BY r.ts DESC LIMIT $fanout
}
MATCH (u)-[r2:RATED|VIEWED|CLICKED|PURCHASED]->(rec:Item)
WHERE rec <> seed AND coalesce(rec.available, true)
WITH rec, count(DISTINCT u) AS support,
     sum(coalesce($type_weights[type(r2)], 0.0) * exp(-0.6931 * ($now - r2.ts) / $half_life_s)) AS score
WHERE score > 0
RETURN rec.id AS item_id, score, support
ORDER BY score DESC, item_id
LIMIT $limit
