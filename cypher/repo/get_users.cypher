// Users by id with their attributes.
// Returns: id, created_at, props (all properties). Unknown ids are absent.
// Params: $ids: list of user ids.
UNWIND $ids AS id
MATCH (u:User {id: id})
RETURN u.id AS id, u.created_at AS created_at, properties(u) AS props
