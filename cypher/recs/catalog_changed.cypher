// The engine's periodic catalogue refresh: the items upserted at or after $since (ordered by id,
// at most $limit), with the same columns as recs/catalog. The hint makes it seek the item_updated
// index (without it, when this query paged by id, the planner sought the id index and filtered
// every item by updated_at: ~270 ms of Neo4j CPU a call at 1M items, against a few ms). The changed
// ids are sorted, so it is not paged: when $limit of them come back the engine reads the whole
// catalogue by id (recs/catalog) instead.
// Returns: id, title, year, available, created_at, categories, interactions.
// Params: $since (epoch seconds), $limit.
MATCH (i:Item)
USING INDEX i:Item(updated_at)
WHERE i.updated_at >= $since
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, i.title AS title, i.year AS year, coalesce(i.available, true) AS available,
       i.created_at AS created_at,
       COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name ORDER BY c.name } AS categories,
       COUNT { (i)<-[:RATED|VIEWED|CLICKED|PURCHASED]-() } AS interactions
