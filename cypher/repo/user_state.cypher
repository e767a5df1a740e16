// What the engine needs to know about users for their requests, in one round trip: each one's
// most recent interactions (seeds, the user vector) and the items they interacted with, each with
// its interaction types (exclusions, down-weights): all of them, or $max_consumed in no set order.
// A request reads its one user; the warm-up reads the most recently active users in batches.
// Unknown users: no row (cold-start users).
// Returns: user_id, stamp (User.history_at when read: the state includes every write stamped up to
//   it; null for a user written before schema v3), recent (list of {item_id, type, ts, value},
//   newest first), consumed (list of {item_id, types}: every interaction type the user has with the item),
//   neighbours (with $per_item > 0: the materialised neighbour lists of each distinct item of the
//   recent interactions, the columns of recs/neighbour_lists: {item_id, co, content}, co and
//   content lists of [id, score] best first, at most $per_item each; else empty): a request's
//   seeds are among those items, so their lists come in the same round trip.
// Params: $user_ids (list of ids), $recent (int), $max_consumed (int), $per_item (int; 0: no neighbours).
UNWIND $user_ids AS user_id
MATCH (u:User {id: user_id})
CALL (u) {
  MATCH (u)-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(i:Item)
  WITH i, r ORDER BY r.ts DESC LIMIT $recent
  RETURN collect({item_id: i.id, type: type(r), ts: r.ts, value: coalesce(r.value, r.dwell)}) AS recent,
         collect(DISTINCT i) AS recent_items
}
// The recent interactions are read and ordered once: the neighbour lists come from their items.
RETURN u.id AS user_id, u.history_at AS stamp, recent,
       COLLECT {
         MATCH (u)-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(i:Item)
         WITH i, collect(type(r)) AS types LIMIT $max_consumed
         RETURN {item_id: i.id, types: types}
       } AS consumed,
       COLLECT {
         UNWIND recent_items AS i
         WITH i WHERE $per_item > 0
         RETURN {item_id: i.id,
                 co: COLLECT { MATCH (i)-[n:CO_INTERACTED]->(rec:Item) WHERE n.rank < $per_item
                               RETURN [rec.id, n.score] ORDER BY n.rank },
                 content: COLLECT { MATCH (i)-[n:SIMILAR_CONTENT]->(rec:Item) WHERE n.rank < $per_item
                                    RETURN [rec.id, n.score] ORDER BY n.rank }}
       } AS neighbours
