"""``graphrec train --after-api``: the training waits for the local API's start-up warm-up before
its export (the export's Neo4j reads competed with the warm-up and the first clients' answers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from graphrec.cli.models import api_warmed, wait_for_api
from graphrec.testing.server import free_port


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_waits_until_the_api_says_its_warm_up_is_over() -> None:
    states = iter([None, None, False, False, True])  # not started, starting, warming, warming, over
    clock = FakeClock()
    assert wait_for_api(lambda: next(states), 600, every_s=2, sleep=clock.sleep, clock=clock) == "over"
    assert clock.slept == [2, 2, 2, 2]  # polled five times, training starts at once after the last


def test_gives_up_after_the_limit_and_says_why() -> None:
    clock = FakeClock()
    assert wait_for_api(lambda: None, 10, every_s=1, sleep=clock.sleep, clock=clock) == "no API answered in 10 s"
    assert clock.t == 10
    clock = FakeClock()
    states = iter([None, False] + [False] * 100)
    assert wait_for_api(lambda: next(states), 5, every_s=1, sleep=clock.sleep, clock=clock) == "still warming after 5 s"


@pytest.fixture()
def readyz() -> Iterator[tuple[int, list[tuple[int, dict]]]]:
    """An HTTP server answering /readyz with the (status, body) pairs queued in the list."""
    answers: list[tuple[int, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, body = answers.pop(0)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], answers
    finally:
        server.shutdown()


def test_reads_the_warm_up_from_readyz(readyz: tuple[int, list[tuple[int, dict]]]) -> None:
    port, answers = readyz
    answers += [(503, {"ready": False}),  # the engine is not created yet
                (503, {"ready": False, "warming": True}),
                (503, {"ready": False, "warming": False, "neo4j": False}),  # warmed (not ready for another reason)
                (200, {"ready": True, "warming": False})]
    assert [api_warmed(port) for _ in range(4)] == [False, False, True, True]
    assert api_warmed(free_port()) is None  # nothing listens
