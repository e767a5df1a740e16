// Upsert a batch of items with their categories and tags (one transaction).
// A row's categories/tags, when given (not null), replace the item's current ones. updated_at
// is set to $now when the row creates the item or changes anything (a property, the categories
// or the tags) and left alone otherwise: loading the same file twice changes nothing, and the
// engine's periodic catalogue refresh (recs/catalog_changed) reads only what really changed.
// Returns: count of rows written.
// A new item's created_at is the row's, else $now, except for rows with created_unknown = true
// (read from a file without it): null, "unknown" (never fresh), until
// load/created_from_first_interaction sets it.
// Params: $now (epoch seconds); $rows: list of {id, props: map (title, year, available,
//   description, ...), created_at: float|null, created_unknown: bool (optional),
//   categories: list|null, tags: list|null}.
UNWIND $rows AS row
MERGE (i:Item {id: row.id})
ON CREATE SET i.created_at = CASE WHEN row.created_unknown = true THEN row.created_at ELSE coalesce(row.created_at, $now) END, i.available = true, i.updated_at = $now
WITH i, row,
     any(k IN keys(row.props) WHERE NOT coalesce(i[k] = row.props[k], i[k] IS NULL AND row.props[k] IS NULL)) OR
     (row.categories IS NOT NULL AND
      COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name AS n ORDER BY n } <>
      COLLECT { UNWIND row.categories AS n RETURN DISTINCT n ORDER BY n }) OR
     (row.tags IS NOT NULL AND
      COLLECT { MATCH (i)-[:HAS_TAG]->(t:Tag) RETURN t.name AS n ORDER BY n } <>
      COLLECT { UNWIND row.tags AS n RETURN DISTINCT n ORDER BY n }) AS changed
SET i += row.props
SET i.updated_at = CASE WHEN changed THEN $now ELSE i.updated_at END
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
