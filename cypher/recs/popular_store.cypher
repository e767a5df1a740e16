// Store the popular lists this process computed under its lease (see recs/popular_lease) and
// release the lease.
// Returns: stored (true when the lease was still this process's; a process that lost it to an
//   expiry stores nothing).
// Params: $holder, $computed_at, $window_s, $half_life_s, $lists (JSON text).
MATCH (m:GraphrecMeta {key: 'popular'})
WHERE m.lease_holder = $holder
SET m.computed_at = $computed_at, m.window_s = $window_s,
    m.half_life_s = $half_life_s, m.lists = $lists, m.lease_until = null, m.lease_holder = null
RETURN true AS stored
