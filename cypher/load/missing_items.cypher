// Which of the given item ids are not in the graph.
// Returns: missing (list of ids).
// Params: $ids: list of item ids.
UNWIND $ids AS id
OPTIONAL MATCH (i:Item {id: id})
WITH id, i WHERE i IS NULL
RETURN collect(id) AS missing
