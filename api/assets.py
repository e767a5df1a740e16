"""GraphiQL's browser assets, installed once from the npm registry into ``<cache_dir>/graphiql``.

The API's GraphiQL page loads React, ReactDOM and GraphiQL from the API itself (``/graphiql/...``),
never from a CDN: a machine without internet, or behind a corporate proxy, gets a working IDE.
``make setup`` runs ``python -m api.assets``: ``npm pack`` fetches the three pinned packages (npm
checks their registry integrity hashes), and only the four files the page needs are kept.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# (npm package spec, file inside its tarball, name served under /graphiql/)
ASSETS: tuple[tuple[str, str, str], ...] = (
    ("react@18.2.0", "package/umd/react.production.min.js", "react.production.min.js"),
    ("react-dom@18.2.0", "package/umd/react-dom.production.min.js", "react-dom.production.min.js"),
    ("graphiql@3.8.3", "package/graphiql.min.js", "graphiql.min.js"),
    ("graphiql@3.8.3", "package/graphiql.min.css", "graphiql.min.css"),
)
STAMP = ".installed-" + "-".join(sorted({spec for spec, _, _ in ASSETS}))


def assets_dir(cache_dir: Path) -> Path:
    return cache_dir / "graphiql"


def missing(cache_dir: Path) -> list[str]:
    """Names of the assets not installed yet (all of them when the pinned versions changed)."""
    d = assets_dir(cache_dir)
    if not (d / STAMP).exists():
        return [name for _, _, name in ASSETS]
    return [name for _, _, name in ASSETS if not (d / name).is_file()]


def install(cache_dir: Path) -> Path:
    """Fetch the pinned packages with ``npm pack`` and keep the page's files; idempotent."""
    d = assets_dir(cache_dir)
    if not missing(cache_dir):
        return d
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is required to install GraphiQL's assets (apt-get install npm)")
    specs = sorted({spec for spec, _, _ in ASSETS})
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp, *specs],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"npm pack {' '.join(specs)} failed: {out.stderr.strip()[-400:]}")
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob(".installed-*"):
            old.unlink()
        for spec, member, name in ASSETS:
            pkg, version = spec.rsplit("@", 1)
            with tarfile.open(Path(tmp) / f"{pkg}-{version}.tgz") as tar:
                src = tar.extractfile(member)
                if src is None:
                    raise RuntimeError(f"{member} is not in {spec}")
                (d / name).write_bytes(src.read())
    (d / STAMP).touch()
    return d


def main() -> int:
    from graphrec.core.config import load_settings

    cache = load_settings().cache_dir
    try:
        d = install(cache)
    except RuntimeError as exc:
        print(f"GraphiQL assets: {exc}", file=sys.stderr)
        return 1
    print(f"GraphiQL assets in {d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
