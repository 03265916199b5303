"""crowdlib: a reproducible companion to five crowd counting and localization papers.

Sub-packages: ``data`` (synthetic world, readers, datasets), ``targets`` (ground-truth builders), ``models``,
``losses``, ``engine``, ``methods`` (per-paper recipes), ``decode``, ``metrics``, ``viz``, ``widgets``,
``repro`` (seeding, provenance, checkpoints, results), ``report`` (notebook outputs).
"""
__version__ = "0.1.0"


def count(images, model="sdnet-shb", **kwargs):  # noqa: ANN001, ANN201 - see crowdlib.counter.count
    """Count people in ``images`` (paths, PIL images or arrays) with a zoo model; see :func:`crowdlib.counter.count`."""
    import importlib  # resolved at call time: `import crowdlib` stays light and the package root imports nothing

    return importlib.import_module("crowdlib.counter").count(images, model, **kwargs)
