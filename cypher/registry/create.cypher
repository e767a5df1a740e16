// Register a trained model version (status 'candidate').
// Returns: id.
// Params: $id, $kind ('gnn' or 'ranker'), $props (map of scalar/list properties: created_at,
//   seed, config_json, metrics_json, snapshot_json, training_seconds, artifact_dir, metric_*...).
CREATE (m:ModelVersion {id: $id, kind: $kind, status: 'candidate'})
SET m += $props
RETURN m.id AS id
