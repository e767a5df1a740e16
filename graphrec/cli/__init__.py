"""The ``graphrec`` command: the one place that composes every layer (see docs/architecture.md).

One module per group of commands: :mod:`~graphrec.cli.server` (the local Neo4j, schema, clock),
:mod:`~graphrec.cli.data` (loading, stats, neighbour lists), :mod:`~graphrec.cli.models` (training,
evaluation, the registry, the schedule), :mod:`~graphrec.cli.serving` (the API and its keys). Errors
a user can cause print one readable line and exit 1; no stack traces.
"""

from graphrec.cli import data, models, server, serving  # noqa: F401 - importing registers their commands
from graphrec.cli.common import app


def main() -> None:  # pragma: no cover
    app()


__all__ = ["app", "main"]
