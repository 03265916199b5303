"""crowdlib: a reproducible companion to five crowd counting and localization papers.

Sub-packages: ``data`` (synthetic world, readers, datasets), ``targets`` (ground-truth builders), ``models``,
``losses``, ``engine``, ``methods`` (per-paper recipes), ``decode``, ``metrics``, ``viz``, ``widgets``,
``repro`` (seeding, provenance, checkpoints, results), ``report`` (notebook outputs).
"""
import os as _os
import platform as _platform

__version__ = "0.1.0"

#: Instruction-set ceilings for torch's CPU kernels (oneDNN convolutions, ATen's vectorised ops). Trained weights
#: depend on the kernel path, which by default follows the host CPU: the same code, seed and thread count train
#: different weights on an AVX-512 host than on an AVX2 one. Pinning AVX2, which every x86-64 server and laptop of
#: the last decade has, lets two such machines with the pinned versions reach the same states (measured here: no
#: speed cost for these small networks). Applied on x86-64 at ``import crowdlib``, before torch builds a kernel
#: (both libraries read these variables lazily); values already in the environment win, and
#: ``CROWDLIB_CPU_ISA=native`` keeps the host's own ceiling. ``crowdlib.repro.provenance`` records what was in effect.
CPU_ISA_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
if _platform.machine().lower() in ("x86_64", "amd64") and _os.environ.get("CROWDLIB_CPU_ISA", "").lower() != "native":
    for _key, _value in CPU_ISA_ENV.items():
        _os.environ.setdefault(_key, _value)


def count(images, model="sdnet-shb", **kwargs):  # noqa: ANN001, ANN201 - see crowdlib.counter.count
    """Count people in ``images`` (paths, PIL images or arrays) with a zoo model; see :func:`crowdlib.counter.count`."""
    import importlib  # resolved at call time: `import crowdlib` stays light and the package root imports nothing

    return importlib.import_module("crowdlib.counter").count(images, model, **kwargs)
