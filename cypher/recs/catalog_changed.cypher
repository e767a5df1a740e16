// The engine's periodic catalogue refresh: one page of the items upserted at or after $since
// (ordered by id), with the same columns as recs/catalog. Uses the item_updated index.
// Returns: id, title, year, available, created_at, categories, interactions.
// Params: $since (epoch seconds), $after ('' for the first page), $limit.
MATCH (i:Item)
WHERE i.updated_at >= $since AND i.id > $after
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, i.title AS title, i.year AS year, coalesce(i.available, true) AS available,
       i.created_at AS created_at,
       COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name ORDER BY c.name } AS categories,
       COUNT { (i)<-[:RATED|VIEWED|CLICKED|PURCHASED]-() } AS interactions
