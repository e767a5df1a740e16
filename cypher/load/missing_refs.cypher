// Before writing a batch of interactions: which of its items and users are not in the graph
// (unknown items are bad rows; unknown users are created on first sight in the write itself).
// Returns: missing_items, missing_users (lists of ids).
// Params: $item_ids, $user_ids: lists of ids (each distinct).
RETURN [id IN $item_ids WHERE NOT EXISTS { MATCH (:Item {id: id}) }] AS missing_items,
       [id IN $user_ids WHERE NOT EXISTS { MATCH (:User {id: id}) }] AS missing_users
