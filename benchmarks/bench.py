"""stablenn's CPU paths against SciPy, NumPy, PyTorch and JAX: the workloads of issue 7.

Usage: python benchmarks/bench.py [--quick] [--repeat N] [--json PATH] [--only WORD ...]
                                  [--peers scipy numpy torch jax] [--no-memory] [--first-call]

The same as ``stablenn bench`` (``stablenn._fast._cli``): every implementation runs on the
same arrays in one process, interleaved, median of at least 7 rounds after a warm-up, and
the table gives median/min/max milliseconds, throughput, the ratio to the fastest peer, the
ratio to the machine's floor and the peak extra memory of one call.  The full sizes take
about 8 GB of memory and some minutes on 2 cores: run them alone on the machine.
"""

from __future__ import annotations

import sys

from stablenn._fast._cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
