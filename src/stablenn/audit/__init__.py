"""Measuring machinery: exact references, ULP distance, input sampling, error budgets.

The modules here depend only on NumPy and mpmath (the public stablenn functions that
`_measure` calls are imported lazily), so the tests of every layer can use them:

* `stablenn.audit._ulp`: floating-point formats, correct rounding, ULP distance, bits;
* `stablenn.audit._oracle`: the mpmath oracle for every public function;
* `stablenn.audit._sampler`: inputs over float bit patterns and the hard regions;
* `stablenn.audit._budgets`: the one table of error budgets;
* `stablenn.audit._measure`: measure a function against the oracle on any backend.
"""
