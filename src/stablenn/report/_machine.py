"""The machine and the software a report was built with, read without importing any backend.

Library versions come from the installed distributions' metadata (`importlib.metadata`),
so listing PyTorch's version does not import PyTorch.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["Clock", "LIBRARIES", "machine", "versions"]

#: distributions listed in the report, in this order (those not installed say so)
LIBRARIES: tuple[str, ...] = (
    "stablenn", "numpy", "array-api-compat", "scipy", "torch", "jax", "jaxlib", "dask", "numba",
    "mpmath", "gmpy2", "sympy", "matplotlib", "scikit-learn", "onnx", "onnxruntime",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    if head.returncode != 0:
        return ""
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def machine() -> dict[str, str]:
    """CPU model, cores, memory, operating system, Python, load and git commit, as text."""
    cores = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    mem = _memory_bytes()
    try:
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except (AttributeError, OSError):
        load = "unknown"
    return {
        "CPU": _cpu_model(),
        "cores": f"{cores} logical" + (f" ({usable} usable by this process)" if usable != cores else ""),
        "memory": f"{mem / 2**30:.1f} GiB" if mem else "unknown",
        "system": platform.platform(),
        "Python": sys.version.split()[0] + f" ({platform.python_implementation()})",
        "load average (1, 5, 15 min) at start": load,
        "git commit": _git_commit() or "not a git checkout",
    }


def versions() -> dict[str, str]:
    """Installed version of every library in `LIBRARIES` ("not installed" otherwise)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class Clock:
    """Wall time and CPU time (this process and its finished child processes) since start."""

    wall0: float = 0.0
    cpu0: float = 0.0
    child0: float = 0.0

    @staticmethod
    def _cpu() -> tuple[float, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime

    @classmethod
    def start(cls) -> Clock:
        cpu, child = cls._cpu()
        return cls(time.perf_counter(), cpu, child)

    def read(self) -> tuple[float, float, float]:
        """(wall seconds, CPU seconds of this process, CPU seconds of its children)."""
        cpu, child = self._cpu()
        return time.perf_counter() - self.wall0, cpu - self.cpu0, child - self.child0
