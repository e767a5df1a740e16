// For Neo4j Browser: a user, their 25 most recent interactions and those items' categories.
// Returns: p (paths).
// Params: $user_id.
MATCH (u:User {id: $user_id})-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(i:Item)
WITH u, r, i ORDER BY r.ts DESC LIMIT 25
MATCH p = (u)-[r]->(i)-[:IN_CATEGORY]->(:Category)
RETURN p
