"""One fixture runs each test on every backend the test command installs.

A backend that cannot be imported fails the run (it is never skipped): the README's test
command installs all of them.  JAX runs with 64-bit floats enabled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

BACKENDS = ("numpy", "array_api_strict", "torch", "jax", "dask")


@dataclass(frozen=True)
class Backend:
    """A backend under test: converts NumPy data in and results back out."""

    name: str
    module: Any

    @property
    def has_bfloat16(self) -> bool:
        return self.name in ("torch", "jax")

    def dtype(self, name: str) -> Any:
        if self.name == "torch":
            return getattr(self.module, name)
        if self.name == "jax":
            import jax.numpy as jnp

            return getattr(jnp, name)
        if self.name == "array_api_strict":
            return getattr(self.module, name)
        if name == "bfloat16":
            raise ValueError(f"{self.name} has no bfloat16")
        return np.dtype(name)

    def asarray(self, a: Any, dtype: str | None = None) -> Any:
        a = np.asarray(a)
        if self.name == "numpy":
            return a.astype(dtype) if dtype else a.copy()
        if self.name == "array_api_strict":
            out = self.module.asarray(a.copy())
            return self.module.astype(out, self.dtype(dtype)) if dtype else out
        if self.name == "torch":
            t = self.module.from_numpy(a.copy())
            return t.to(self.dtype(dtype)) if dtype else t
        if self.name == "jax":
            import jax.numpy as jnp

            out = jnp.asarray(a)
            return out.astype(self.dtype(dtype)) if dtype else out
        if self.name == "dask":
            import dask.array as da

            out = da.from_array(a.copy(), chunks=tuple(max(1, (s + 1) // 2) for s in a.shape) or ())
            return out.astype(dtype) if dtype else out
        raise AssertionError(self.name)

    def numpy(self, y: Any) -> np.ndarray:
        """Result back as NumPy (float64 for 16-bit floats so bfloat16 survives)."""
        if self.name == "torch":
            if y.dtype in (self.module.bfloat16, self.module.float16):
                y = y.to(self.module.float64)
            return y.detach().cpu().numpy()
        if self.name == "dask":
            return np.asarray(y.compute())
        if self.name == "jax":
            arr = np.asarray(y)
            return arr.astype(np.float64) if "bfloat16" in str(arr.dtype) else arr
        if self.name == "array_api_strict":
            return np.asarray(y._array) if hasattr(y, "_array") else np.asarray(y)
        return np.asarray(y)

    def is_native(self, y: Any) -> bool:
        """Whether ``y`` is an array of this backend (not silently converted)."""
        import array_api_compat as c

        checks = {
            "numpy": lambda v: c.is_numpy_array(v) or isinstance(v, np.generic),
            "torch": c.is_torch_array,
            "jax": c.is_jax_array,
            "dask": c.is_dask_array,
            "array_api_strict": lambda v: type(v).__module__.startswith("array_api_strict"),
        }
        return bool(checks[self.name](y))


def _load(name: str) -> Backend:
    if name == "numpy":
        return Backend(name, np)
    if name == "array_api_strict":
        import array_api_strict

        return Backend(name, array_api_strict)
    if name == "torch":
        import torch

        return Backend(name, torch)
    if name == "jax":
        import jax.numpy as jnp

        return Backend(name, jnp)
    if name == "dask":
        import dask.array as da

        return Backend(name, da)
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return _load(request.param)


@pytest.fixture
def np_backend() -> Backend:
    return _load("numpy")


def all_backends() -> list[Backend]:
    return [_load(name) for name in BACKENDS]
