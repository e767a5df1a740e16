// Keep the time of the newest interaction on the graph's clock node (the "now" that decay uses
// on historical data such as MovieLens), so nothing has to scan interactions to find it.
// The clock is one node: every write to it takes the same exclusive lock, held until the commit.
// The check runs first, lock-free: when the clock is less than $slack seconds behind $ts nothing
// is written and no lock is taken. The API passes engine.clock_slack_s (live events carry "now",
// so with slack 0 every recordInteraction would take this one lock); loaders and the journal
// replay, one update per batch, pass 0.
// Returns: ts (the clock after the update), no row when it was not behind.
// Params: $ts (epoch seconds of the newest interaction just written), $slack (seconds, >= 0).
OPTIONAL MATCH (c:GraphrecMeta {key: 'clock'})
WITH c WHERE c IS NULL OR c.latest_ts IS NULL OR c.latest_ts < $ts - $slack
MERGE (m:GraphrecMeta {key: 'clock'})
SET m.latest_ts = CASE WHEN m.latest_ts IS NULL OR $ts > m.latest_ts THEN $ts ELSE m.latest_ts END
RETURN m.latest_ts AS ts
