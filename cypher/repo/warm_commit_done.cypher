// The end of the API's write-path warm-up (repo/warm_commit): its two nodes, with their
// relationship, are removed, and so are those of a warm-up that never ended (a process killed
// while warming up) once they are older than $stale_before. A warm-up still running keeps
// going: repo/warm_commit merges its nodes again.
// Returns: nothing.
// Params: $key (the warm-up key repo/warm_commit used), $stale_before (epoch seconds).
MATCH (m:GraphrecMeta)
WHERE m.key IN [$key, $key + ':session']
   OR (m.key STARTS WITH 'warm-up:' AND coalesce(m.last_at, 0.0) < $stale_before)
DETACH DELETE m
