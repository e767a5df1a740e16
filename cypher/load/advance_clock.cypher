// Keep the time of the newest interactions on the graph's clock node (the "now" that decay uses
// on historical data such as MovieLens), so nothing has to scan interactions to find it.
// A single outlier cannot move it: the node keeps the two newest distinct times it was given
// (`top`) and the clock is the older of the two, so one event far ahead of all others waits until
// a second one confirms that time has moved. The clock never moves back.
// The clock is one node: every write to it takes the same exclusive lock, held until the commit.
// The check runs first, lock-free: when the clock is less than $slack seconds behind $ts nothing
// is written and no lock is taken. The API passes engine.clock_slack_s (live events carry "now",
// so with slack 0 every recordInteraction would take this one lock); loaders and the journal
// replay, one update per batch, pass 0.
// Returns: ts (the clock after the update), no row when it was not behind.
// Params: $ts (epoch seconds of the newest interaction just written), $runner_up (the newest
//   before it among the same write's interactions, a different time; null when there is none),
//   $slack (seconds, >= 0).
OPTIONAL MATCH (c:GraphrecMeta {key: 'clock'})
WITH c WHERE c IS NULL OR c.latest_ts IS NULL OR c.latest_ts < $ts - $slack
MERGE (m:GraphrecMeta {key: 'clock'})
WITH m, coalesce(m.top, CASE WHEN m.latest_ts IS NULL THEN [] ELSE [m.latest_ts] END)
        + [$ts] + CASE WHEN $runner_up IS NULL THEN [] ELSE [$runner_up] END AS given
UNWIND given AS t
WITH m, t ORDER BY t DESC
WITH m, collect(DISTINCT t)[0..2] AS top
SET m.top = top,
    m.latest_ts = CASE
      WHEN m.latest_ts IS NOT NULL AND m.latest_ts > top[size(top) - 1] THEN m.latest_ts
      ELSE top[size(top) - 1] END
RETURN m.latest_ts AS ts
