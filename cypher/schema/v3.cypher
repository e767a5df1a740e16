// Schema version 3: users carry history_at (epoch seconds on the server's clock, set by every
// statement that writes interactions: load/interactions, load/interactions_create(_new_users)),
// indexed so each API process can poll the users whose history changed since its last look
// (repo/users_changed) and stop serving their held state. Users written before v3 have no
// history_at: a process reads their state from Neo4j before it holds it. Idempotent; takes no
// parameters.
CREATE INDEX user_history_at IF NOT EXISTS FOR (u:User) ON (u.history_at)
