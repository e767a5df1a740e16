// Before writing a batch of {{rel}} interactions: which keys are already stored (idempotent
// re-loads skip them), so the write can CREATE instead of MERGE.
// Returns: present (list of keys already stored).
// Params: $keys: list of idempotency keys.
UNWIND $keys AS k
MATCH ()-[r:{{rel}} {key: k}]->()
RETURN collect(k) AS present
