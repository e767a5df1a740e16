"""The Neo4j password: configured, or generated once for the local server graphrec manages.

Both the graph store (to connect) and the server manager (to initialise the database) read it
here, so neither imports the other.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from graphrec.core.config import Settings
from graphrec.core.errors import ConfigError


def password_file(settings: Settings) -> Path:
    """Where the generated password of the managed server lives (mode 0600)."""
    return (settings.var_dir / "neo4j").resolve() / "password"


def neo4j_password(settings: Settings, create: bool = True) -> str:
    """The configured password, else the generated one (created with mode 0600 when ``create``)."""
    cfg = settings.neo4j
    if cfg.password is not None:
        pw = cfg.password.get_secret_value()
        if pw == "neo4j" or len(pw) < 8:
            raise ConfigError("neo4j.password must be at least 8 characters and not the default")
        return pw
    path = password_file(settings)
    if path.exists():
        return path.read_text().strip()
    if not create:
        raise ConfigError(f"no Neo4j password: set GRAPHREC_NEO4J_PASSWORD, or start the local server "
                          f"(graphrec neo4j start) to generate one in {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(pw + "\n")
    return pw
