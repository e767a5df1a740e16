// The materialised neighbour lists ({{nrel}}: CO_INTERACTED or SIMILAR_CONTENT) of some items,
// best first: what the engine's bounded neighbour cache is filled from.
// Returns: item_id, neighbours (list of [id, score], at most $per_item).
// Params: $ids (item ids), $per_item.
UNWIND $ids AS id
MATCH (s:Item {id: id})
RETURN id AS item_id, COLLECT {
  MATCH (s)-[n:{{nrel}}]->(rec:Item) WHERE n.rank < $per_item
  RETURN [rec.id, n.score] ORDER BY n.rank
} AS neighbours
