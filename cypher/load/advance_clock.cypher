// Keep the time of the newest interaction on the graph's clock node (the "now" that decay uses
// on historical data such as MovieLens), so nothing has to scan interactions to find it.
// Returns: ts (the clock after the update).
// Params: $ts (epoch seconds of the newest interaction just written).
MERGE (m:GraphrecMeta {key: 'clock'})
SET m.latest_ts = CASE WHEN m.latest_ts IS NULL OR $ts > m.latest_ts THEN $ts ELSE m.latest_ts END
RETURN m.latest_ts AS ts
