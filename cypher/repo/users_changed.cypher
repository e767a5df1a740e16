// The state poll of each API process: the users whose history changed (User.history_at, stamped by
// every interaction write, schema v3 index) at or after $since, and the server's clock taken
// before they are read (the next poll's $since is that minus engine.state_sync_overlap_s: server
// time only, so the API's clock never matters).
// Returns: one row: now (epoch seconds, server clock), changed (list of [user id, history_at],
//   at most $limit, in no set order).
// Params: $since (epoch seconds on the server's clock; null: nobody, the first poll), $limit (int).
WITH datetime.realtime().epochMillis / 1000.0 AS now
RETURN now, COLLECT {
         MATCH (u:User) WHERE u.history_at >= $since
         RETURN [u.id, u.history_at] AS changed LIMIT $limit
       } AS changed
