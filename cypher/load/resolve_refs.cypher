// Before writing a batch of interactions: the element ids of its items and users that are in the
// graph (the loader remembers them, and its writes find nodes by element id, re-checking the id
// property). An id not returned is not in the graph: unknown items are bad rows; unknown users are
// created on first sight in the write itself.
// Returns: items, users (lists of [id, elementId]).
// Params: $item_ids, $user_ids: lists of ids (each distinct).
CALL () {
  UNWIND $item_ids AS id
  MATCH (i:Item {id: id})
  RETURN collect([id, elementId(i)]) AS items
}
CALL () {
  UNWIND $user_ids AS id
  MATCH (u:User {id: id})
  RETURN collect([id, elementId(u)]) AS users
}
RETURN items, users
