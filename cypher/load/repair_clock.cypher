// Recompute the graph's clock (see load/advance_clock) from the interactions stored: the newest
// interaction time not past $max_ts (wall-clock now plus loader.max_clock_skew_s). Repairs a clock
// that an interaction from the future moved (`graphrec clock repair`). Scans every interaction.
// Interactions past $max_ts are left as they are and counted.
// Returns: was (the clock before), ts (after; null when no interaction qualifies), future (count
//   of interactions past $max_ts).
// Params: $max_ts (epoch seconds).
OPTIONAL MATCH ()-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->()
WITH max(CASE WHEN r.ts <= $max_ts THEN r.ts END) AS newest, count(CASE WHEN r.ts > $max_ts THEN 1 END) AS future
MERGE (m:GraphrecMeta {key: 'clock'})
WITH m, m.latest_ts AS was, newest, future
SET m.latest_ts = newest, m.top = CASE WHEN newest IS NULL THEN null ELSE [newest] END
RETURN was, m.latest_ts AS ts, future
