// What a bulk import (loaders/bulk.py, neo4j-admin database import) would replace: the nodes of
// the database other than graphrec's own bookkeeping (GraphrecMeta: the schema version, the clock,
// leases). The import runs only when this is 0, so it never destroys users, items, interactions,
// API keys or model versions. Both counts come from Neo4j's count store (no scan).
// Returns: nodes (int).
// Params: none.
CALL () { MATCH (n) RETURN count(n) AS all_nodes }
CALL () { MATCH (m:GraphrecMeta) RETURN count(m) AS meta }
RETURN all_nodes - meta AS nodes
