"""How many torch intra-op threads training uses: the cores actually free, or 1.

torch's OpenMP threads spin-wait for each other; when another process holds one of two cores,
a second thread waits on a descheduled peer at every parallel region and an epoch gets several
times slower than with one thread. So training asks the machine first: the cores this process
may run on (``os.sched_getaffinity``) minus the ones other processes keep busy (psutil's
per-core utilisation over a short sample), at least 1, at most ``cap``.
"""

from __future__ import annotations

import os

import psutil
import torch

#: A core busier than this (percent, over the sample) counts as taken.
BUSY_PERCENT = 50.0


def free_cores(sample_s: float = 0.3) -> int:
    """Cores of this process's affinity that other work leaves mostly idle (at least 1)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    per_core = psutil.cpu_percent(interval=sample_s, percpu=True)
    busy = sum(1 for c in allowed if c < len(per_core) and per_core[c] > BUSY_PERCENT)
    return max(1, len(allowed) - busy)


def choose_threads(configured: int = 0, cap: int = 4) -> int:
    """``configured`` if > 0, else the free cores (capped); sets torch's intra-op threads."""
    n = configured if configured > 0 else min(cap, free_cores())
    torch.set_num_threads(n)
    return n
