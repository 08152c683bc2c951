"""Peak resident memory while a call runs: of this process, or of each Dask worker.

Shared by the Dask benchmarks.  The memory is sampled (every 20 ms in this process, every
50 ms for the workers of a LocalCluster, read through psutil), so a peak shorter than the
interval can be missed.  RSS is what the operating system charges, which is what a user
running out of memory meets.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any


def rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Sampler(threading.Thread):
    def __init__(self, read: Callable[[], dict[str, int]], interval: float) -> None:
        super().__init__(daemon=True)
        self.read, self.interval = read, interval
        self.peak: dict[str, int] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for key, value in self.read().items():
                self.peak[key] = max(self.peak.get(key, 0), value)
            self.done.wait(self.interval)


def measure(fn: Callable[[], Any], client: Any = None) -> tuple[Any, float, dict[str, int], dict[str, int]]:
    """``(result, seconds, baseline, peak)``: RSS per process (this one, or each worker)."""
    if client is None:
        read: Callable[[], dict[str, int]] = lambda: {"process": rss()}  # noqa: E731
        interval = 0.02
    else:  # a LocalCluster: its workers are processes of this machine, read them here
        import psutil

        procs = {addr: psutil.Process(pid) for addr, pid in client.run(os.getpid).items()}
        read = lambda: {addr: p.memory_info().rss for addr, p in procs.items()}  # noqa: E731
        interval = 0.05
    baseline = read()
    sampler = _Sampler(read, interval)
    sampler.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        sampler.done.set()
        sampler.join()
    final = read()
    peak = {k: max(sampler.peak.get(k, 0), final.get(k, 0)) for k in final}
    return out, seconds, baseline, peak


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"
