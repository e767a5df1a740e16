// Items by id, with their categories and tags (one round trip for a whole page).
// Returns: id, title, year, available, created_at, description, categories, tags, interactions
//   (in-degree over interactions). Unknown ids are absent from the result.
// Params: $ids: list of item ids.
UNWIND $ids AS id
MATCH (i:Item {id: id})
RETURN i.id AS id, i.title AS title, i.year AS year, coalesce(i.available, true) AS available,
       i.created_at AS created_at, i.description AS description,
       COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name ORDER BY c.name } AS categories,
       COLLECT { MATCH (i)-[:HAS_TAG]->(t:Tag) RETURN t.name ORDER BY t.name } AS tags,
       COUNT { (i)<-[:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]-() } AS interactions
