// The end of the API's write-path warm-up (repo/warm_commit): its two nodes, with their
// relationship, are removed.
// Returns: nothing.
// Params: $key (the warm-up key repo/warm_commit used).
MATCH (m:GraphrecMeta)
WHERE m.key IN [$key, $key + ':session']
DETACH DELETE m
