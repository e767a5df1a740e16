// For Neo4j Browser: the paths behind a collaborative reason — how $user_id reaches $item_id
// through an item they interacted with and other users who interacted with both.
// Paste into Browser with :param user_id => '196'; :param item_id => '50'; then run.
// Returns: p (paths, at most 25).
// Params: $user_id, $item_id.
MATCH p = (u:User {id: $user_id})-[:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
          <-[:RATED|VIEWED|CLICKED|PURCHASED]-(other:User)-[:RATED|VIEWED|CLICKED|PURCHASED]->(rec:Item {id: $item_id})
WHERE other <> u AND seed <> rec
RETURN p
LIMIT 25
