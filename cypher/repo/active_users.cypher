// The most recently active users (latest User.history_at first, through the schema v3 index):
// whose states each API process reads into memory at start (engine.user_state_preload). Users
// written before schema v3 carry no stamp and are read on their first request instead.
// Returns: id, one row per user, at most $limit.
// Params: $limit (int).
MATCH (u:User) WHERE u.history_at IS NOT NULL
RETURN u.id AS id ORDER BY u.history_at DESC LIMIT $limit
