// The popular lists as last computed by any API process (recs/popular_store), so that N API
// processes run the window queries once per engine.popular_refresh_s between them, not N times.
// Returns: computed_at (wall-clock epoch seconds, null when never computed), window_s,
//   half_life_s, lists (JSON text: {"popular": [[id, score]...],
//   "by_category": {category: [[id, score]...]}}).
// Params: none.
OPTIONAL MATCH (m:GraphrecMeta {key: 'popular'})
RETURN m.computed_at AS computed_at, m.window_s AS window_s, m.half_life_s AS half_life_s,
       m.lists AS lists
