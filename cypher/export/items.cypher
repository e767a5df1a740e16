// Snapshot export: one page of items (ordered by id) with their content, for the GNN.
// entities are the item's linked KG entities and their one-hop KG neighbours (actors,
// directors, genres...), capped per item.
// Returns: id, title, year, available, created_at, description, categories, tags, entities.
// Params: $after (the last id of the previous page, '' for the first), $limit, $max_entities.
MATCH (i:Item)
WHERE i.id > $after
WITH i ORDER BY i.id LIMIT $limit
RETURN i.id AS id, i.title AS title, i.year AS year, coalesce(i.available, true) AS available,
       i.created_at AS created_at, i.description AS description,
       COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name ORDER BY c.name } AS categories,
       COLLECT { MATCH (i)-[:HAS_TAG]->(t:Tag) RETURN t.name ORDER BY t.name } AS tags,
       COLLECT { MATCH (i)-[:ABOUT]->(e:Entity) OPTIONAL MATCH (e)-[:KG]->(x:Entity)
                 WITH e, x UNWIND [e.id, x.id] AS ent WITH DISTINCT ent WHERE ent IS NOT NULL
                 RETURN ent LIMIT $max_entities } AS entities
