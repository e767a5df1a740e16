// Upsert a batch of items with their categories and tags (one transaction).
// A row's categories/tags, when given (not null), replace the item's current ones.
// Returns: count of rows written.
// Params: $now (epoch seconds); $rows: list of {id, props: map (title, year, available,
//   description, ...), created_at: float|null, categories: list|null, tags: list|null}.
UNWIND $rows AS row
MERGE (i:Item {id: row.id})
ON CREATE SET i.created_at = coalesce(row.created_at, $now), i.available = true
SET i += row.props
WITH i, row
CALL (i, row) {
  WITH i, row WHERE row.categories IS NOT NULL
  OPTIONAL MATCH (i)-[old:IN_CATEGORY]->(c:Category) WHERE NOT c.name IN row.categories
  DELETE old
  WITH DISTINCT i, row
  UNWIND row.categories AS name
  MERGE (c:Category {name: name})
  MERGE (i)-[:IN_CATEGORY]->(c)
}
CALL (i, row) {
  WITH i, row WHERE row.tags IS NOT NULL
  OPTIONAL MATCH (i)-[old:HAS_TAG]->(t:Tag) WHERE NOT t.name IN row.tags
  DELETE old
  WITH DISTINCT i, row
  UNWIND row.tags AS name
  MERGE (t:Tag {name: name})
  MERGE (i)-[:HAS_TAG]->(t)
}
RETURN count(*) AS written
