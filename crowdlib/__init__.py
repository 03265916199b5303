"""crowdlib: a reproducible companion to five crowd counting and localization papers.

Sub-packages: ``data`` (synthetic world, readers, datasets), ``targets`` (ground-truth builders), ``models``,
``losses``, ``engine``, ``methods`` (per-paper recipes), ``decode``, ``metrics``, ``viz``, ``widgets``,
``repro`` (seeding, provenance, checkpoints, results), ``report`` (notebook outputs).
"""
__version__ = "0.1.0"
