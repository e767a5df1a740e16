// Ids to fill in the examples of GraphiQL's default query and the Browser guide: a user with
// history, an item they have not interacted with that another user links to them (so the
// co_interaction_path example finds paths), and one of the user's own items. No order: the first
// match; bounded by LIMIT 1.
// Returns: user_id, item_id, seed_id (no row on an empty graph).
// Params: none.
MATCH (u:User)-[:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
      <-[:RATED|VIEWED|CLICKED|PURCHASED]-(other:User)-[:RATED|VIEWED|CLICKED|PURCHASED]->(rec:Item)
WHERE other <> u AND rec <> seed AND NOT EXISTS { (u)-->(rec) }
RETURN u.id AS user_id, rec.id AS item_id, seed.id AS seed_id
LIMIT 1
