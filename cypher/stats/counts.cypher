// What is in the graph: node counts per label and interaction counts per type (count store).
// Returns: name, count.
// Params: none.
CALL () {
  MATCH (n:User) RETURN 'users' AS name, count(n) AS count
  UNION ALL MATCH (n:Item) RETURN 'items' AS name, count(n) AS count
  UNION ALL MATCH (n:Tag) RETURN 'tags' AS name, count(n) AS count
  UNION ALL MATCH (n:Category) RETURN 'categories' AS name, count(n) AS count
  UNION ALL MATCH (n:Session) RETURN 'sessions' AS name, count(n) AS count
  UNION ALL MATCH (n:Entity) RETURN 'entities' AS name, count(n) AS count
  UNION ALL MATCH ()-[r:RATED]->() RETURN 'RATED' AS name, count(r) AS count
  UNION ALL MATCH ()-[r:VIEWED]->() RETURN 'VIEWED' AS name, count(r) AS count
  UNION ALL MATCH ()-[r:CLICKED]->() RETURN 'CLICKED' AS name, count(r) AS count
  UNION ALL MATCH ()-[r:PURCHASED]->() RETURN 'PURCHASED' AS name, count(r) AS count
  UNION ALL MATCH ()-[r:SKIPPED]->() RETURN 'SKIPPED' AS name, count(r) AS count
  UNION ALL MATCH ()-[r:KG]->() RETURN 'kg_triples' AS name, count(r) AS count
}
RETURN name, count
