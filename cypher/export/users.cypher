// Snapshot export: one page of users (ordered by id) with their attributes.
// Returns: id, props.
// Params: $after ('' for the first page), $limit.
MATCH (u:User)
WHERE u.id > $after
WITH u ORDER BY u.id LIMIT $limit
RETURN u.id AS id, properties(u) AS props
