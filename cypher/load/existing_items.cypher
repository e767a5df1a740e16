// How many of the given item ids already exist (to report new vs. updated items).
// Returns: found (int).
// Params: $ids: list of item ids.
UNWIND $ids AS id
MATCH (i:Item {id: id})
RETURN count(i) AS found
