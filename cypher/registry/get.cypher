// One model version by id.
// Returns: m (all properties as a map), or no row.
// Params: $id.
MATCH (m:ModelVersion {id: $id})
RETURN properties(m) AS m
