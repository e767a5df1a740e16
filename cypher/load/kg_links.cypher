// Link items to knowledge-graph entities (MovieLens: Freebase ids).
// Returns: count of rows seen.
// Params: $rows: list of {item, entity}.
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MERGE (e:Entity {id: row.entity})
MERGE (i)-[:ABOUT]->(e)
RETURN count(*) AS seen
