// Items sharing tags, categories or KG entities with ONE item, each shared node weighted
// 1/log(2 + its degree): the live content path for items too new to have materialised
// neighbours (similar items of a cold item). Never the item itself. A shared node linked to more
// than $max_degree items is skipped: its degree is read once per node, before expanding (at 1M
// items a category holds ~50k of them; expanding it, and counting its degree per reached item,
// cost seconds of Neo4j CPU per request).
// Returns: item_id, score, via (shared names, at most 3).
// Params: $item_id, $max_degree, $limit.
MATCH (seed:Item {id: $item_id})-[:HAS_TAG|IN_CATEGORY|ABOUT]->(c)
WITH seed, c, COUNT { (c)<-[:HAS_TAG|IN_CATEGORY|ABOUT]-() } AS degree
WHERE degree <= $max_degree
MATCH (c)<-[:HAS_TAG|IN_CATEGORY|ABOUT]-(rec:Item)
WHERE rec <> seed AND coalesce(rec.available, true)
WITH rec, c, 1.0 / log(2.0 + degree) AS w
WITH rec, sum(w) AS score, collect(DISTINCT coalesce(c.name, c.id))[0..3] AS via
RETURN rec.id AS item_id, score, via
ORDER BY score DESC, item_id
LIMIT $limit
