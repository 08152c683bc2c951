"""Full accuracy measurement of every public function of stablenn against the mpmath oracle.

Usage::

    python benchmarks/accuracy.py [--samples 20000] [--vector-samples 20000]
                                  [--backend numpy] [--json FILE]

Measures every function in float16, bfloat16 (on PyTorch: NumPy has no bfloat16),
float32 and float64 with 20,000 scalar inputs per elementwise function and 20,000
vectors / elements / rows per reduction and loss (the issue's count; the test suite uses
fewer), prints the table of maximum ULP against the budget table, the worst input of
every measurement, and the figures of the documentation-only functions (the ``MEASURED``
table of ``stablenn.audit._budgets``).  Exit status 1 if any budget is exceeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from stablenn.audit import _budgets
from stablenn.audit._measure import BACKENDS, FUNCTIONS, accuracy_table, format_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--vector-samples", type=int, default=20000)
    parser.add_argument("--backend", default="numpy", choices=BACKENDS)
    parser.add_argument("--functions", nargs="*", default=list(FUNCTIONS), choices=FUNCTIONS)
    parser.add_argument("--dtypes", nargs="*", default=list(_budgets.DTYPES), choices=_budgets.DTYPES)
    parser.add_argument("--json", default=None, help="also write every result as JSON to this file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    table = format_table([])
    print(table, flush=True)
    results = accuracy_table(
        args.samples,
        vector_samples=args.vector_samples,
        functions=args.functions,
        dtypes=args.dtypes,
        backend=args.backend,
        out=sys.stdout,
    )
    print()
    print(format_table(results))
    print()
    print("Worst input of each measurement:")
    for r in results:
        print(" ", r.describe_worst(300))
    print()
    print("MEASURED (documentation-only functions, max ULP):")
    for r in results:
        if r.function in _budgets.DOCUMENTATION_ONLY:
            print(f"    ({r.function!r}, {r.dtype!r}): {r.max_ulp!r},")
    print(f"\nwall time {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([r.to_dict() for r in results], fh, indent=1, default=float)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
