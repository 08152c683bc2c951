"""Dask fast paths: one tree reduction over the mergeable log-sum-exp state.

Imported only by the loaders registered in ``stablenn._fast._dask_entries``.
"""
