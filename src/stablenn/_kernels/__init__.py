"""Pure array-API math: one function per formula, each taking ``xp`` first.

Kernels name no backend.  They receive arrays already validated and promoted by the public
layer, in the dtype to compute in, and return arrays in that dtype; the public layer rounds
the result to the caller's dtype once.  ``exact=True`` asks a kernel to carry the rounding
errors of its intermediate steps (double-double arithmetic, ``_dd.py``) because the working
dtype is the result dtype itself (float64 in, float64 out); with ``exact=False`` the working
dtype is wider than the result and plain arithmetic is already accurate enough.
"""
