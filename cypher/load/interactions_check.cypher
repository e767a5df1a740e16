// Before writing a batch of {{rel}} interactions: which keys are already stored (idempotent
// re-loads skip them), so the write can CREATE instead of MERGE. The index hint pins the plan to
// the key constraint's index: a plan cached while the type had few relationships must not scan
// them once it has millions (a CI run saw one check of 10k keys run past its 30 s timeout).
// Returns: present (list of keys already stored).
// Params: $keys: list of idempotency keys.
UNWIND $keys AS k
MATCH ()-[r:{{rel}} {key: k}]->()
USING INDEX r:{{rel}}(key)
RETURN collect(k) AS present
