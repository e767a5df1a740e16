"""graphrec's exceptions. Every error a user can cause is one of these, never a raw driver error.

::

    GraphrecError
    ├── ConfigError                 bad or missing configuration
    ├── ValidationError             bad input (field named in ``.field``)
    │   ├── BadRowError             a bad row in a loaded file (file, line, reason)
    │   └── KeyConflict             an idempotency key already names another interaction
    ├── NotFound                    an unknown id where one is required
    ├── ServerError                 the local Neo4j server could not be provisioned or started
    │   └── MissingToolError        Java or Maven is absent
    ├── GraphStoreError             Neo4j failed
    │   ├── GraphStoreUnavailable   Neo4j cannot be reached (retryable)
    │   ├── CredentialsRefused      Neo4j refused the user name or password
    │   └── QueryError              a query was refused (constraint, syntax, types)
    ├── VectorStoreError            the vector index failed
    │   ├── VectorStoreUnavailable  the vector index cannot be reached (retryable)
    │   └── CollectionNotFound      no such collection or alias
    ├── ModelError                  no trained model / registry problem
    └── LockHeld                    another run holds the lock
"""

from __future__ import annotations


class GraphrecError(Exception):
    """Root of every graphrec error. ``code`` is the GraphQL ``extensions.code`` it maps to."""

    code = "INTERNAL"


class ConfigError(GraphrecError):
    code = "INTERNAL"


class ValidationError(GraphrecError):
    """Input that graphrec refuses. ``field`` names the offending field when known."""

    code = "BAD_USER_INPUT"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class BadRowError(ValidationError):
    """A row of a loaded file that cannot be stored."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file = file
        self.line = line
        self.reason = reason

    def __reduce__(self) -> tuple[type[BadRowError], tuple[str, int, str]]:
        # Pickled with its own arguments (a bulk import's parts send bad rows between processes).
        return (BadRowError, (self.file, self.line, self.reason))


class KeyConflict(ValidationError):
    """An idempotency key reused for a different interaction (another user, item or type). A key
    names one interaction, whoever sends it: the same key with the same user, item and type is a
    retry (``created: false``); with anything else it is refused, on the direct path and the
    journal's alike."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key[:80]!r} already names a different interaction "
                         "(another user, item or type); use a new key", field="key")
        self.key = key


class NotFound(GraphrecError):
    code = "NOT_FOUND"

    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"{kind} {id!r} not found")
        self.kind = kind
        self.id = id


class ServerError(GraphrecError):
    pass


class MissingToolError(ServerError):
    pass


class GraphStoreError(GraphrecError):
    pass


class BulkImportError(GraphrecError):
    """A bulk import that cannot run: the graph is not empty, or Neo4j is not graphrec's local server."""


class GraphStoreUnavailable(GraphStoreError):
    pass


class GraphStoreBusy(GraphStoreUnavailable):
    """Refused before it was sent: this process already has as many request-path reads in flight
    as it allows (``engine.neo4j_request_reads``). No verdict on Neo4j."""


class CredentialsRefused(GraphStoreError):
    """Neo4j refused the user name or password (the CLI says where the password came from)."""


class QueryError(GraphStoreError):
    pass


class VectorStoreError(GraphrecError):
    pass


class VectorStoreUnavailable(VectorStoreError):
    pass


class CollectionNotFound(VectorStoreError):
    pass


class ModelError(GraphrecError):
    pass


class LockHeld(GraphrecError):
    pass
