"""CI's budget check: ``stablenn audit --all --check`` over every function, dtype and
gradient, run as a user runs it (the installed command, a fresh process), at a sample size
that fits CI.  It exits non-zero if any budget of the table is exceeded; this test fails then,
with the audit's own report of the worst input."""

from __future__ import annotations

import os
import subprocess
import sys


def test_every_function_and_dtype_within_its_budget():
    env = dict(os.environ)
    env.pop("STABLENN_FAST_CPU", None)
    proc = subprocess.run(
        [sys.executable, "-m", "stablenn", "audit", "--all", "--check", "--samples", "300", "--processes", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )
    report = proc.stdout + proc.stderr
    assert "audits in" in report, report  # it ran every audit, not a usage error
    assert proc.returncode == 0, report
