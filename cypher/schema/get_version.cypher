// The schema version recorded in the database.
// Returns: version (int, or no row when the schema was never applied), applied_at.
// Params: none.
MATCH (m:GraphrecMeta {key: 'schema'})
RETURN m.version AS version, m.applied_at AS applied_at
