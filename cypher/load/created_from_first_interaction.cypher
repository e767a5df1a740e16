// Items whose creation time is unknown (loaded from a file without created_at) get the time of
// their first interaction, once they have one. Run by `graphrec load items|interactions`.
// Returns: items (how many were set).
// Params: $now (epoch seconds, for updated_at).
MATCH (i:Item) WHERE i.created_at IS NULL
CALL (i) {
  MATCH (i)<-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]-(:User)
  RETURN min(r.ts) AS first
}
WITH i, first WHERE first IS NOT NULL
SET i.created_at = first, i.updated_at = $now
RETURN count(i) AS items
