// Create or update a bookkeeping node (see load/meta_get).
// Returns: key.
// Params: $key, $props (map of scalar properties).
MERGE (m:GraphrecMeta {key: $key})
SET m += $props
RETURN m.key AS key
