// Items sharing tags, categories or KG entities with ONE item, each shared node weighted
// 1/log(2 + its degree): the live content path for items too new to have materialised
// neighbours (similar items of a cold item). Never the item itself.
// Returns: item_id, score, via (shared names, at most 3).
// Params: $item_id, $limit.
MATCH (seed:Item {id: $item_id})-[:HAS_TAG|IN_CATEGORY|ABOUT]->(c)<-[:HAS_TAG|IN_CATEGORY|ABOUT]-(rec:Item)
WHERE rec <> seed AND coalesce(rec.available, true)
WITH rec, c, 1.0 / log(2.0 + COUNT { (c)<-[:HAS_TAG|IN_CATEGORY|ABOUT]-() }) AS w
WITH rec, sum(w) AS score, collect(DISTINCT coalesce(c.name, c.id))[0..3] AS via
RETURN rec.id AS item_id, score, via
ORDER BY score DESC, item_id
LIMIT $limit
