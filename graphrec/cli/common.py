"""What every command shares: the app and its groups, one-line errors, settings and the store."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console

from graphrec.core.config import Settings, get_settings
from graphrec.core.errors import CredentialsRefused, GraphrecError
from graphrec.core.locks import exclusive

app = typer.Typer(help="graphrec: graph-centric recommendations.", no_args_is_help=True, add_completion=False)
neo4j_app = typer.Typer(help="Manage the local Neo4j server.", no_args_is_help=True)
schema_app = typer.Typer(help="Constraints and indexes.", no_args_is_help=True)
load_app = typer.Typer(help="Load data into the graph.", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(schema_app, name="schema")
app.add_typer(load_app, name="load")
models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")
apikey_app = typer.Typer(help="API keys for the GraphQL API.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
clock_app = typer.Typer(help="The graph's clock (the newest interaction time, 'now' for decay).", no_args_is_help=True)
app.add_typer(clock_app, name="clock")
journal_app = typer.Typer(help="The interaction journal: dead letters, requeue, replay.", no_args_is_help=True)
app.add_typer(journal_app, name="journal")

console = Console(stderr=False)
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn expected failures (graphrec errors, files that cannot be read) into one red line and
    exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CredentialsRefused:
            err.print(f"[red]error:[/red] {refused_credentials(settings())}", highlight=False)
            raise typer.Exit(1) from None
        except GraphrecError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None
        except OSError as exc:  # a file the user named, or one the configuration points at
            where = f": {exc.filename}" if exc.filename else ""
            err.print(f"[red]error:[/red] {exc.strerror or exc}{where}", highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def refused_credentials(s: Settings) -> str:
    """What to do when Neo4j refuses the password, in one sentence naming where it came from."""
    from graphrec.core.graph.credentials import password_file

    n = s.neo4j
    data = (s.var_dir / "neo4j" / "data").resolve()
    if n.password is None:
        where, todo = (str(password_file(s)), f"set GRAPHREC_NEO4J_PASSWORD to the password the database under {data} "
                       "was created with, or stop Neo4j and delete that directory to start over (this deletes the graph)")
    elif n.managed:
        where, todo = ("GRAPHREC_NEO4J_PASSWORD (or neo4j.password in the config)",
                       f"unset it to use the password graphrec generated for its server ({password_file(s)}), "
                       "or set it to the one the database was created with")
    else:
        where, todo = ("GRAPHREC_NEO4J_PASSWORD (or neo4j.password in the config)",
                       "set it (and GRAPHREC_NEO4J_USER) to that server's credentials")
    return f"Neo4j at {n.effective_uri} refused user {n.user!r} with the password from {where}: {todo}"


@contextlib.contextmanager
def step_lock(name: str, what: str) -> Iterator[None]:
    """One ``what`` at a time per var dir (graphrec.core.locks): a second `make demo` started while
    the first one loads or computes neighbours stops at once with one line, instead of loading the
    same data beside it."""
    with exclusive(settings().var_dir, name, lambda holder: (
            f"{what} is already running ({holder}; another `make demo`?): wait for it to finish, "
            "or stop it with Ctrl-C, then run this again")):
        yield


def settings() -> Settings:
    return get_settings()


def _store() -> Any:
    from graphrec.core.graph.store import GraphStore

    return GraphStore.from_settings(settings())
