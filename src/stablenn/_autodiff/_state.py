"""Whether the routing to the gradient rules is switched off (inside a rule's own primal)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

_LOCAL = threading.local()


def is_disabled() -> bool:
    return getattr(_LOCAL, "depth", 0) > 0


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the public functions plainly: a rule computing its primal calls them in here."""
    _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
    try:
        yield
    finally:
        _LOCAL.depth -= 1
