// A few users who have interacted with something (the first found, no order), for the API's
// start-up warm-up: it serves them recommendations so that Neo4j compiles the read path before
// real traffic arrives.
// Returns: id.
// Params: $limit.
MATCH (u:User)
WHERE EXISTS { (u)-->(:Item) }
RETURN u.id AS id
LIMIT $limit
