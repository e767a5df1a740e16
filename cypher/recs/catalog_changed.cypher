// The engine's periodic catalogue refresh: the items upserted at or after $since (ordered by id,
// at most $limit), with the same columns as recs/catalog. The hint makes it seek the item_updated
// index: left to itself the planner seeks the id index for `i.id > $after` and filters every item
// by updated_at (at 1M items ~270 ms of Neo4j CPU a call, every minute per API process, against a
// few ms). The changed ids are sorted: the engine reads the whole catalogue by id (recs/catalog)
// when a page fills up, rather than paging a bulk change here.
// Returns: id, title, year, available, created_at, categories, interactions.
// Params: $since (epoch seconds), $after ('' for the first page), $limit.
MATCH (i:Item)
USING INDEX i:Item(updated_at)
WHERE i.updated_at >= $since AND i.id > $after
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, i.title AS title, i.year AS year, coalesce(i.available, true) AS available,
       i.created_at AS created_at,
       COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name ORDER BY c.name } AS categories,
       COUNT { (i)<-[:RATED|VIEWED|CLICKED|PURCHASED]-() } AS interactions
