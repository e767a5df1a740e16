// The paths behind a recommendation, as plain rows for graphrec.core.explanation (a networkx
// graph, GraphML): collaborative (user → an item they interacted with ← another user → the item)
// and content (user → an item they interacted with → a category, tag or KG entity ← the item).
// Returns: kind, nodes (list of {key, label, name}), rels (list of {type, source, target, ts, value}),
//          at most $limit rows of each kind, strongest first (the other user's and the seed's recency).
// Params: $user_id, $item_id, $limit.
CALL (*) {
  MATCH (u:User {id: $user_id})-[r1:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
        <-[r2:RATED|VIEWED|CLICKED|PURCHASED]-(other:User)-[r3:RATED|VIEWED|CLICKED|PURCHASED]->(rec:Item {id: $item_id})
  WHERE other <> u AND seed <> rec
  WITH u, seed, other, rec, r1, r2, r3 ORDER BY r1.ts DESC, r3.ts DESC LIMIT $limit
  RETURN 'co_interaction' AS kind, [u, seed, other, rec] AS ns, [r1, r2, r3] AS rs
  UNION
  MATCH (u:User {id: $user_id})-[r1:RATED|VIEWED|CLICKED|PURCHASED]->(seed:Item)
        -[r2:IN_CATEGORY|HAS_TAG|ABOUT]->(shared)<-[r3:IN_CATEGORY|HAS_TAG|ABOUT]-(rec:Item {id: $item_id})
  WHERE seed <> rec
  WITH u, seed, shared, rec, r1, r2, r3 ORDER BY r1.ts DESC LIMIT $limit
  RETURN 'content' AS kind, [u, seed, shared, rec] AS ns, [r1, r2, r3] AS rs
}
RETURN kind,
       [n IN ns | {key: labels(n)[0] + ':' + coalesce(n.id, n.name), label: labels(n)[0],
                   name: coalesce(n.title, n.name, n.id)}] AS nodes,
       [r IN rs | {type: type(r), source: labels(startNode(r))[0] + ':' + coalesce(startNode(r).id, startNode(r).name),
                   target: labels(endNode(r))[0] + ':' + coalesce(endNode(r).id, endNode(r).name),
                   ts: r.ts, value: r.value}] AS rels
