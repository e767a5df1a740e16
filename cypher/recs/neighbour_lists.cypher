// The materialised neighbour lists of some items, both kinds in one round trip, best first: what
// the engine's bounded neighbour cache is filled from (a request needs co-interaction and content
// neighbours of the same seeds; concurrent requests' misses are read together).
// Returns: item_id, co (CO_INTERACTED) and content (SIMILAR_CONTENT): lists of [id, score], at
//   most $per_item each. Ids with no Item node are left out.
// Params: $ids (item ids), $per_item.
UNWIND $ids AS id
MATCH (s:Item {id: id})
RETURN id AS item_id,
  COLLECT {
    MATCH (s)-[n:CO_INTERACTED]->(rec:Item) WHERE n.rank < $per_item
    RETURN [rec.id, n.score] ORDER BY n.rank
  } AS co,
  COLLECT {
    MATCH (s)-[n:SIMILAR_CONTENT]->(rec:Item) WHERE n.rank < $per_item
    RETURN [rec.id, n.score] ORDER BY n.rank
  } AS content
