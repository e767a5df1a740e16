// Sessions of a batch of interactions: (:User)-[:HAS_SESSION]->(:Session {id, started_at, last_at}).
// The interactions themselves carry the session id (r.session), so a session's items are
// (s)<-[:HAS_SESSION]-(u)-[r]->(i) WHERE r.session = s.id. One row per session; idempotent.
// Returns: count of rows seen.
// Params: $rows: list of {session, user, first_ts: float, last_ts: float}.
UNWIND $rows AS row
MATCH (u:User {id: row.user})
MERGE (s:Session {id: row.session})
ON CREATE SET s.user_id = row.user, s.started_at = row.first_ts, s.last_at = row.last_ts
SET s.started_at = CASE WHEN row.first_ts < s.started_at THEN row.first_ts ELSE s.started_at END,
    s.last_at = CASE WHEN row.last_ts > s.last_at THEN row.last_ts ELSE s.last_at END
MERGE (u)-[:HAS_SESSION]->(s)
RETURN count(*) AS seen
