// Record the schema version.
// Returns: version.
// Params: $version (int), $applied_at (epoch seconds).
MERGE (m:GraphrecMeta {key: 'schema'})
SET m.version = $version, m.applied_at = $applied_at
RETURN m.version AS version
