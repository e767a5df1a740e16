// Whether a user and an item exist (graphrec.core.explanation), and the item's title.
// Returns: user (bool), item (bool), title.
// Params: $user_id, $item_id.
OPTIONAL MATCH (u:User {id: $user_id})
OPTIONAL MATCH (i:Item {id: $item_id})
RETURN u IS NOT NULL AS user, i IS NOT NULL AS item, i.title AS title
