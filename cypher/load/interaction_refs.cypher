// Before writing interactions (recordInteraction, the journal's replay): which of their items are
// missing, and which of their idempotency keys are already stored, with the interaction each names
// (a key names one interaction: reused for another user, item or type it is refused). One index
// seek per key and interaction type (the hints pin the plan to the key constraints' indexes).
// Returns: one row: missing (list of item ids not in the graph), stored (list of {key, user, item,
//   type} for the keys found).
// Params: $ids (item ids), $keys (idempotency keys).
RETURN
  COLLECT { UNWIND $ids AS id WITH id WHERE NOT EXISTS { MATCH (:Item {id: id}) } RETURN id } AS missing,
  COLLECT { UNWIND $keys AS k MATCH (u:User)-[r:RATED {key: k}]->(i:Item) USING INDEX r:RATED(key)
            RETURN {key: k, user: u.id, item: i.id, type: 'RATED'} } +
  COLLECT { UNWIND $keys AS k MATCH (u:User)-[r:VIEWED {key: k}]->(i:Item) USING INDEX r:VIEWED(key)
            RETURN {key: k, user: u.id, item: i.id, type: 'VIEWED'} } +
  COLLECT { UNWIND $keys AS k MATCH (u:User)-[r:CLICKED {key: k}]->(i:Item) USING INDEX r:CLICKED(key)
            RETURN {key: k, user: u.id, item: i.id, type: 'CLICKED'} } +
  COLLECT { UNWIND $keys AS k MATCH (u:User)-[r:PURCHASED {key: k}]->(i:Item) USING INDEX r:PURCHASED(key)
            RETURN {key: k, user: u.id, item: i.id, type: 'PURCHASED'} } +
  COLLECT { UNWIND $keys AS k MATCH (u:User)-[r:SKIPPED {key: k}]->(i:Item) USING INDEX r:SKIPPED(key)
            RETURN {key: k, user: u.id, item: i.id, type: 'SKIPPED'} } AS stored
