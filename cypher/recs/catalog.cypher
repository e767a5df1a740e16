// The engine's in-memory catalogue: one page of items (ordered by id) with what business rules
// and explanations need. Refreshed periodically; new items are picked up on the next refresh.
// Returns: id, title, year, available, created_at, categories, interactions.
// Params: $after ('' for the first page), $limit.
MATCH (i:Item)
WHERE i.id > $after
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, i.title AS title, i.year AS year, coalesce(i.available, true) AS available,
       i.created_at AS created_at,
       COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name ORDER BY c.name } AS categories,
       COUNT { (i)<-[:RATED|VIEWED|CLICKED|PURCHASED]-() } AS interactions
