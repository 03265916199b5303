"""Per-paper training and evaluation recipes built on :mod:`crowdlib.engine`."""
