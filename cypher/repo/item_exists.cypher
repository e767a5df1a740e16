// Whether an item exists.
// Returns: found (bool).
// Params: $item_id.
OPTIONAL MATCH (i:Item {id: $item_id})
RETURN i IS NOT NULL AS found
