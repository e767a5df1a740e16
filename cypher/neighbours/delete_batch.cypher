// Remove the materialised neighbour edges of a batch of items before writing fresh ones.
// {{nrel}} is NEIGHBOUR-type: CO_INTERACTED or SIMILAR_CONTENT.
// Returns: deleted (count).
// Params: $ids (item ids).
UNWIND $ids AS id
MATCH (:Item {id: id})-[s:{{nrel}}]->()
DELETE s
RETURN count(s) AS deleted
