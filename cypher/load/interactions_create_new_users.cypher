// Like load/interactions_create, for the rows of users that load/users_first_sight created
// earlier in the same transaction (their element ids are not known yet): users found by id.
// A missing item or user fails the transaction (CREATE with a NULL node), as there.
// Returns: count of rows seen.
// Params: $rows: list of {type, key, user, item, ie (element id of the item), ts: float,
//   value: float|null, dwell: float|null, session: string|null}.
UNWIND $rows AS row
OPTIONAL MATCH (i) WHERE elementId(i) = row.ie
OPTIONAL MATCH (u:User {id: row.user})
WITH row, CASE WHEN i:Item AND i.id = row.item THEN i END AS i,
     u
CREATE (u)-[r:$(row.type) {key: row.key, ts: row.ts, value: row.value, dwell: row.dwell, session: row.session}]->(i)
RETURN count(*) AS seen
