// A bookkeeping node's properties (what `make demo` may reuse: a dataset already loaded, the data
// signature neighbours were last computed on).
// Returns: props (map; no row when the node does not exist).
// Params: $key.
MATCH (m:GraphrecMeta {key: $key})
RETURN properties(m) AS props
