"""A progress bar on stderr: redrawn in place on a terminal, one plain line per step otherwise.

>>> import io
>>> out = io.StringIO()
>>> p = Progress(2, stream=out)
>>> p.step("proofs"); p.step("plots"); p.close()
>>> print(out.getvalue().strip())
[1/2] proofs
[2/2] plots
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


class Progress:
    """Counts `total` steps; `step(label)` announces the next one.

    On a TTY the bar is redrawn on one line (``\\r``) with the elapsed time; elsewhere
    (a pipe, a log file, a test) each step is one line, so logs stay readable.
    ``enabled=False`` prints nothing.
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool = True, width: int = 28) -> None:
        self.total = max(1, int(total))
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.width = width
        self.count = 0
        self.start = time.perf_counter()
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._last_len = 0

    def step(self, label: str) -> None:
        self.count = min(self.count + 1, self.total)
        if not self.enabled:
            return
        if self.tty:
            done = int(self.width * (self.count - 1) / self.total)
            bar = "#" * done + "-" * (self.width - done)
            text = f"[{bar}] {self.count}/{self.total} {time.perf_counter() - self.start:5.0f} s  {label}"
            cols = 100
            text = text[:cols]
            pad = max(0, self._last_len - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._last_len = len(text)
        else:
            self.stream.write(f"[{self.count}/{self.total}] {label}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            bar = "#" * self.width
            text = f"[{bar}] {self.total}/{self.total} {time.perf_counter() - self.start:5.0f} s  done"
            self.stream.write("\r" + text + " " * max(0, self._last_len - len(text)) + "\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
