"""Neo4j SIGKILLed in the middle of ``graphrec load interactions`` of a CSV: the load fails, the
server recovers, and loading the same file again ends with exactly the file's interactions, each
once (the batches committed before the kill are kept, none is written twice)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.faults.harness import ROOT, Stack, wait_for

ROWS = 24_000
TYPES = ("VIEW", "CLICK", "PURCHASE")
NEW_USERS = 1_000


def _write_csv(path: Path) -> tuple[int, dict[str, int]]:
    """ROWS interactions with keys ``csv-<n>``, every 500th line repeated (a duplicate row);
    returns the number of distinct interactions and how many of each type."""
    by_type = {t: 0 for t in TYPES}
    with open(path, "w") as fh:
        fh.write("user_id,item_id,type,ts,dwell_seconds,session_id,key\n")
        for n in range(ROWS):
            t = TYPES[n % 3]
            by_type[t] += 1
            line = f"cu{(n // 20) % NEW_USERS},i{(n * 13) % 150},{t},{1_730_000_000 + n},{n % 90 or ''},cs{n // 20},csv-{n}\n"
            fh.write(line)
            if n % 500 == 0:
                fh.write(line)
    return ROWS, by_type


def _load(stack: Stack, csv: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "graphrec.cli", "load", "interactions", str(csv),
                                 "--batch-size", "500", "--on-error", "stop"],
                                env=stack.env(), cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)


def test_neo4j_killed_mid_csv_load_then_reload_is_exact(stack: Stack) -> None:
    csv = stack.var / "interactions.csv"
    distinct, by_type = _write_csv(csv)
    with stack.store() as st:
        before = st.counts()

    def loaded() -> int:
        """Interactions written so far (Neo4j's count store: cheap enough to poll)."""
        try:
            with stack.store() as st:
                now = st.counts()
        except Exception:  # noqa: BLE001 - the server may be busy; ask again
            return 0
        return sum(now.get(r, 0) - before.get(r, 0) for r in ("VIEWED", "CLICKED", "PURCHASED"))

    load = _load(stack, csv, stack.var / "load-1.log")
    # Kill once a few batches are in, well before the end.
    wait_for(lambda: loaded() >= 2_000 or load.poll() is not None, 120, "the load to commit batches")
    committed = loaded()
    assert load.poll() is None, f"the load finished before the kill ({committed}); make the file bigger"
    stack.server.kill()
    t0 = time.monotonic()
    assert load.wait(timeout=120) != 0, "a load whose server was killed must fail"
    print(f"loader gave up {time.monotonic() - t0:.1f}s after the kill")
    stack.server.start()
    partial = loaded()
    assert committed <= partial < distinct  # the committed batches survived the kill, the rest is missing

    again = _load(stack, csv, stack.var / "load-2.log")
    assert again.wait(timeout=300) == 0, (stack.var / "load-2.log").read_text()[-2000:]

    found = stack.keys_found("csv-")
    assert len(found) == distinct and len(set(found)) == distinct  # every interaction once
    with stack.store() as st:
        after = st.counts()
        users = st.run_text("MATCH (u:User) WHERE u.id STARTS WITH 'cu' RETURN count(u) AS n")[0]["n"]
        sessions = st.run_text("MATCH (s:Session) WHERE s.id STARTS WITH 'cs' RETURN count(s) AS n")[0]["n"]
    for t, rel in (("VIEW", "VIEWED"), ("CLICK", "CLICKED"), ("PURCHASE", "PURCHASED")):
        assert after[rel] - before.get(rel, 0) == by_type[t], rel
    assert users == NEW_USERS and sessions == ROWS // 20
    assert after["items"] == before["items"]
