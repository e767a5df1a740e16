"""Driver exceptions become graphrec's: retryable (GraphStoreUnavailable) or refused (QueryError)."""

from __future__ import annotations

import pytest
from neo4j import exceptions as nx

from graphrec.core.errors import GraphStoreError, GraphStoreUnavailable, QueryError
from graphrec.core.graph.store import translate_errors


def _neo4j(code: str, message: str = "refused") -> nx.Neo4jError:
    return nx.Neo4jError._basic_hydrate(neo4j_code=code, message=message)


def _failed_result(cause: BaseException | None) -> nx.ResultFailedError:
    """What the driver raises when a result whose statement failed is read again (as a retried
    transaction function can): the statement's failure is the ``__cause__``."""
    try:
        try:
            if cause is not None:
                raise cause
            raise nx.ResultFailedError(None, "result failed")
        except nx.ResultFailedError:
            raise
        except Exception as exc:
            raise nx.ResultFailedError(None, "result failed") from exc
    except nx.ResultFailedError as err:
        return err


CONSTRAINT = "Neo.ClientError.Schema.ConstraintValidationFailed"


@pytest.mark.parametrize(("raised", "expected", "words"), [
    (_neo4j(CONSTRAINT, "already exists"), QueryError, "constraint violated: already exists"),
    (_neo4j("Neo.ClientError.Statement.SyntaxError"), QueryError, "SyntaxError"),
    (_neo4j("Neo.TransientError.Transaction.DeadlockDetected"), GraphStoreUnavailable, "transient"),
    (nx.ServiceUnavailable("gone"), GraphStoreUnavailable, "unavailable"),
    (nx.AuthError("no"), GraphStoreError, "credentials"),
    (ConnectionResetError("reset"), GraphStoreUnavailable, "connection failed"),
    # a failed result read again: its cause decides
    (_failed_result(_neo4j(CONSTRAINT, "already exists")), QueryError, "constraint violated: already exists"),
    (_failed_result(_neo4j("Neo.TransientError.Transaction.DeadlockDetected")), GraphStoreUnavailable, "transient"),
    (_failed_result(None), GraphStoreUnavailable, "driver error"),
])
def test_driver_errors_are_translated(raised: Exception, expected: type[Exception], words: str) -> None:
    with pytest.raises(expected) as info, translate_errors("load/x"):
        raise raised
    assert words in str(info.value) and info.value.__cause__ is raised
    assert type(info.value) is expected or expected is GraphStoreError


def test_other_exceptions_pass_through() -> None:
    err = ValueError("not the driver's")
    with pytest.raises(ValueError) as info, translate_errors("load/x"):
        raise err
    assert info.value is err
