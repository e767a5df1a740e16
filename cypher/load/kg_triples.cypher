// Knowledge-graph triples between entities: (:Entity)-[:KG {relation}]->(:Entity).
// Returns: count of rows seen.
// Params: $rows: list of {head, relation, tail}.
UNWIND $rows AS row
MERGE (h:Entity {id: row.head})
MERGE (t:Entity {id: row.tail})
MERGE (h)-[r:KG {relation: row.relation}]->(t)
RETURN count(*) AS seen
