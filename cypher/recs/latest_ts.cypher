// The time of the newest interaction (the data's "now" for decay on historical data), kept on
// the clock node by load/advance_clock.
// Returns: ts (null when nothing was ever loaded).
// Params: none.
OPTIONAL MATCH (m:GraphrecMeta {key: 'clock'})
RETURN m.latest_ts AS ts
