// Where a quiet popular window starts instead: the time of the $events-th newest interaction at
// or before $now (with fewer interactions in the graph, the oldest one). The engine widens the
// window back to it when the nominal window (engine.popular_window_days) holds fewer than
// engine.popular_min_events interactions (graphrec.core.recs.popularity). Scans every
// interaction up to $now, keeping the newest $events: asked only when the window is quiet.
// Returns: one row: since (null when there is no interaction), events (how many were found).
// Params: $now (the graph's clock), $events.
MATCH (:User)-[r:RATED|VIEWED|CLICKED|PURCHASED]->(:Item)
WHERE r.ts <= $now
WITH r.ts AS ts ORDER BY ts DESC LIMIT $events
RETURN min(ts) AS since, count(ts) AS events
