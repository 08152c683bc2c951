"""Audited fast paths: compiled CPU kernels, Dask graphs, GPU kernels.

Each ``_*_entries.py`` module registers its entries in the dispatch table
(``stablenn._dispatch.register``) without importing the library it needs: loaders import
lazily.  ``register_all`` runs once, when ``stablenn._dispatch`` is imported.
"""

from __future__ import annotations

import importlib

_ENTRY_MODULES = ("_cpu_entries", "_dask_entries", "_triton_entries")


def register_all() -> None:
    for name in _ENTRY_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # an entry module not written yet
            if exc.name != f"{__name__}.{name}":
                raise
