// Set the graph's clock (see load/advance_clock) back to the newest interaction still stored,
// after a benchmark removed what it wrote. Scans every interaction: for the demo graph.
// Returns: ts (the clock after the reset, null when there are no interactions).
// Params: none.
OPTIONAL MATCH ()-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->()
WITH max(r.ts) AS newest
MERGE (m:GraphrecMeta {key: 'clock'})
SET m.latest_ts = newest
RETURN m.latest_ts AS ts
