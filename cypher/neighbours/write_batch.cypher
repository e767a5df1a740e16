// Write materialised item→item neighbour edges ({{nrel}}: CO_INTERACTED or SIMILAR_CONTENT),
// computed offline by `graphrec refresh-neighbours` from a snapshot of the graph.
// Returns: written (count).
// Params: $rows: list of {src, dst, score, rank}, $version (the refresh run id).
UNWIND $rows AS row
MATCH (a:Item {id: row.src})
MATCH (b:Item {id: row.dst})
CREATE (a)-[s:{{nrel}} {score: row.score, rank: row.rank, version: $version}]->(b)
RETURN count(s) AS written
