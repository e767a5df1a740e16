// Every API key's public record (never the hash).
// Returns: id, name, scopes, origins, created_at, revoked_at.
// Params: none.
MATCH (k:ApiKey)
RETURN k.id AS id, k.name AS name, k.scopes AS scopes, coalesce(k.origins, []) AS origins, k.created_at AS created_at,
       k.revoked_at AS revoked_at
ORDER BY k.created_at
