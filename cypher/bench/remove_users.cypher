// Remove up to $limit users whose id starts with $prefix, with their interactions and sessions:
// what a benchmark wrote into the demo graph (bench.serve's recordInteraction users are named
// "bench-<time>-u<n>"). Called until it returns 0.
// Returns: removed (count of users removed by this call).
// Params: $prefix (id prefix), $limit (users per call).
MATCH (u:User) WHERE u.id STARTS WITH $prefix
WITH u LIMIT $limit
OPTIONAL MATCH (u)-[:HAS_SESSION]->(s:Session)
DETACH DELETE s
WITH DISTINCT u
DETACH DELETE u
RETURN count(*) AS removed
