// Users named by a batch of interactions who have no profile yet: created on first sight, in
// the same transaction as the interactions (events may arrive before profiles).
// Returns: count of rows seen.
// Params: $rows: list of {user, ts: float} (ts of the user's first interaction in the batch).
UNWIND $rows AS row
MERGE (u:User {id: row.user})
ON CREATE SET u.created_at = row.ts
RETURN count(*) AS seen
