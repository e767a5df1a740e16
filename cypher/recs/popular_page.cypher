// One page of the time-decayed popular lists (overall and per category): the items of one id
// range, each scored over its interactions in the window (type weight times
// 2^(-(now - ts) / half_life), as in recs/popular), keeping only those that can still enter the
// lists: score at least $floor (the overall list's last score so far, 0.0 while it is not
// full) or at least the floor of one of the item's categories ($category_floors, absent: 0.0).
// The engine walks the catalogue page by page, pausing between pages, and merges the pages'
// rows into the lists (graphrec.engine.catalog.window_lists): one scan of the whole window in
// one query held a Neo4j core for ~3 s at 2M interactions and collected every scored item.
// Returns: one row: last (the page's last item id; null past the last page), items (list of
//   {item_id, score, categories}).
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
    RETURN sum(coalesce($type_weights[type(r)], 0.0) * exp(-0.6931 * abs($now - r.ts) / $half_life_s)) AS score
  }
  WITH i, score WHERE score > 0
  WITH i, score, COLLECT { MATCH (i)-[:IN_CATEGORY]->(c:Category) RETURN c.name } AS categories
  WHERE score >= $floor OR any(c IN categories WHERE score >= coalesce($category_floors[c], 0.0))
  RETURN collect({item_id: i.id, score: score, categories: categories}) AS items
}
RETURN page[-1].id AS last, items
