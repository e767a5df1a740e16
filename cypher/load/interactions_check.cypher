// Before writing a batch of {{rel}} interactions: which keys are already stored (idempotent
// re-loads skip them), so the write can CREATE instead of MERGE. The index hint pins the plan to
// the key constraint's index whatever the statistics were when it was planned: a large check
// on another plan can run past its timeout.
// Returns: present (list of keys already stored).
// Params: $keys: list of idempotency keys.
UNWIND $keys AS k
MATCH ()-[r:{{rel}} {key: k}]->()
USING INDEX r:{{rel}}(key)
RETURN collect(k) AS present
