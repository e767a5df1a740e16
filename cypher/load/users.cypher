// Upsert a batch of users (one transaction).
// Returns: count of rows written.
// Params: $rows: list of {id: string, created_at: float|null, props: map of scalar attributes}.
UNWIND $rows AS row
MERGE (u:User {id: row.id})
ON CREATE SET u.created_at = coalesce(row.created_at, $now)
SET u += row.props
RETURN count(*) AS written
