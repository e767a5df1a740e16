// One page of the time-decayed popular lists (overall and per category): the items of one id
// range, each scored over its interactions in the window (type weight times
// 2^(-(now - ts) / half_life), as in recs/popular), keeping only those that can still enter the
// lists: score at least $floor (the overall list's last score so far, 0.0 while it is not
// full) or at least the floor of one of the item's categories ($category_floors, absent: 0.0).
// The engine walks the catalogue page by page, pausing between pages, and merges the pages'
// rows into the lists (graphrec.engine.catalog.window_lists): one scan of the whole window in
// one query holds a Neo4j core for as long as the window is large and collects every scored item.
// The page also counts the window's interactions with its available items (events): a window
// holding fewer than engine.popular_min_events is widened (recs/popular_since).
// Returns: one row: last (the page's last item id; null past the last page), events (the
//   page's interactions in the window), items (list of {item_id, score, categories}).
// Params: $after ('' for the first page), $limit (items per page), $since, $now, $half_life_s,
//   $type_weights, $floor, $category_floors (map category -> score).
MATCH (i:Item)
WHERE i.id > $after
WITH i ORDER BY i.id LIMIT $limit
WITH collect(i) AS page
CALL (page) {
  UNWIND page AS i
  WITH i WHERE coalesce(i.available, true)
  CALL (i) {
    MATCH (i)<-[r:RATED|VIEWED|CLICKED|PURCHASED]-()
    WHERE r.ts >= $since
    RETURN sum(coalesce($type_weights[type(r)], 0.0) * exp(-0.6931 * abs($now - r.ts) / $half_life_s)) AS score,
           count(r) AS n
  }
  WITH i, score, n,
       CASE WHEN score > 0 THEN COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name } ELSE [] END AS categories
  WITH i, score, n, categories,
       score > 0 AND (score >= $floor OR any(c IN categories WHERE score >= coalesce($category_floors[c], 0.0))) AS kept
  RETURN sum(n) AS events,
         collect(CASE WHEN kept THEN {item_id: i.id, score: score, categories: categories} END) AS items
}
RETURN page[-1].id AS last, events, items
