// Take the lease to recompute the shared popular lists, when they are older than $stale_before and
// no other process holds an unexpired lease. The write lock on the node serialises concurrent
// attempts: exactly one of them gets mine = true.
// Returns: mine (true when this caller now holds the lease; no row otherwise).
// Params: $holder (a process's identity), $now (wall-clock epoch seconds), $lease_s, $stale_before.
MERGE (m:GraphrecMeta {key: 'popular'})
WITH m
WHERE coalesce(m.computed_at, 0.0) < $stale_before
  AND (coalesce(m.lease_until, 0.0) < $now OR m.lease_holder = $holder)
SET m.lease_until = $now + $lease_s, m.lease_holder = $holder
RETURN true AS mine
