"""Long CLI steps in a terminal: one progress bar at a time, and one final line per step (`graphrec
load movielens` used to leave four finished bars on the screen above its four summary lines).

The command runs in a pseudo-terminal (a real tty: tqdm and rich draw as they do for a person);
what it writes is replayed on a small screen model (carriage return, newline, cursor up, erase
line; colours ignored) after every read, and the bars on the screen are counted at each of
those moments. (No terminal-emulator package is installed here: the model covers the control
sequences tqdm and rich emit.)"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from graphrec.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")
BAR = re.compile(r"\|.*\[\d\d:\d\d<")  # a tqdm bar: "users:  40%|####      | 400/1.00k [00:01<00:02, ...]"


class Screen:
    """The lines a terminal shows after the bytes written to it (wide enough never to wrap)."""

    def __init__(self) -> None:
        self.lines: list[list[str]] = [[]]
        self.row = self.col = 0

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            m = CSI.match(text, i)
            if m:
                n = int(m.group(1) or "1") if m.group(1).isdigit() else 1
                op = m.group(2)
                if op == "A":
                    self.row = max(0, self.row - n)
                elif op == "B":
                    self.row += n
                elif op == "K":  # erase: to the end of the line (0) or all of it (2)
                    line = self.lines[self.row] if self.row < len(self.lines) else []
                    del line[0 if m.group(1) == "2" else self.col:]
                i = m.end()
                continue
            c = text[i]
            i += 1
            if c == "\r":
                self.col = 0
            elif c == "\n":
                self.row += 1
                self.col = 0
            elif c == "\x1b" or c < " ":
                continue
            else:
                while len(self.lines) <= self.row:
                    self.lines.append([])
                line = self.lines[self.row]
                line.extend(" " * (self.col - len(line) + 1) if len(line) <= self.col else "")
                line[self.col] = c
                self.col += 1
            while len(self.lines) <= self.row:
                self.lines.append([])

    def text(self) -> list[str]:
        return [s for s in ("".join(line).rstrip() for line in self.lines) if s]

    def bars(self) -> list[str]:
        return [s for s in self.text() if BAR.search(s)]


def run_in_terminal(args: list[str], env: dict[str, str], timeout: float = 300.0) -> tuple[int, Screen, int]:
    """Run the CLI in a pseudo-terminal; returns its exit code, the final screen and the most bars
    the screen showed at once."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))  # 50 rows, 160 columns
    proc = subprocess.Popen([sys.executable, "-m", "graphrec.cli", *args], cwd=ROOT, env=env,
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    screen, most = Screen(), 0
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise TimeoutError(f"graphrec {' '.join(args)}: no output for {timeout} s")
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            screen.feed(data.decode(errors="replace"))
            most = max(most, len(screen.bars()))
        return proc.wait(60), screen, most
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.integration
def test_loading_shows_one_bar_at_a_time_and_one_line_per_step(neo4j_settings: Settings, store) -> None:  # noqa: ANN001
    n = neo4j_settings.neo4j
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    env.update({"GRAPHREC_VAR_DIR": str(neo4j_settings.var_dir), "GRAPHREC_NEO4J_BOLT_PORT": str(n.bolt_port),
                "GRAPHREC_NEO4J_HTTP_PORT": str(n.http_port), "COLUMNS": "160", "LINES": "50", "TERM": "xterm"})
    rc, screen, most = run_in_terminal(["load", "synthetic", "--users", "400", "--items", "300",
                                        "--interactions", "30000", "--batch-size", "500"], env)
    assert rc == 0, screen.text()
    assert most == 1, screen.text()  # a bar was drawn, and never two at once
    assert screen.bars() == [], screen.text()  # finished bars leave the screen
    finals = [s for s in screen.text() if re.match(r"(users|items|interactions): [\d,]+ rows", s)]
    assert [s.split(":")[0] for s in finals] == ["users", "items", "interactions"], screen.text()

    rc, screen, most = run_in_terminal(["refresh-neighbours"], env)
    assert rc == 0, screen.text()
    assert most == 1 and screen.bars() == [], screen.text()
    edges = [s for s in screen.text() if re.match(r"\w+: [\d,]+ edges", s)]
    assert len(edges) >= 2 and len(edges) == len(set(edges)), screen.text()
