"""The instruction-set path of torch's CPU kernels, and whether the AVX2 pin of :data:`crowdlib.CPU_ISA_ENV` holds.

``import crowdlib`` caps oneDNN and ATen at AVX2 on x86-64 (see the package docstring's note): the same code, seed
and thread count otherwise train different weights on hosts with different instruction sets. Both libraries fix
their choice at the first kernel they run, so the pin holds only when crowdlib is imported before torch does CPU
work; :func:`check_cpu_isa_pin` (called by :class:`crowdlib.repro.fixed_threads`) warns when it did not, and
:func:`cpu_kernel_info` goes into every ``provenance.json``.
"""
from __future__ import annotations

import os
import platform
import warnings
from pathlib import Path
from typing import Any

import torch

import crowdlib

__all__ = ["cpu_kernel_info", "check_cpu_isa_pin", "numpy_simd_info"]

_WARNED = False


def cpu_kernel_info() -> dict[str, Any]:
    """The host CPU model, ATen's kernel capability in this process (``AVX2``, ``AVX512``, ...) and the
    instruction-set variables of :data:`crowdlib.CPU_ISA_ENV` as set here."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or None
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = None
    return {"model": model, "aten_capability": capability,
            "env": {k: os.environ.get(k) for k in crowdlib.CPU_ISA_ENV}, "numpy_simd": numpy_simd_info()}


def numpy_simd_info() -> dict[str, Any]:
    """NumPy's own SIMD dispatch in this process: its compiled ``baseline``, the ``dispatched`` targets this CPU
    runs (e.g. ``X86_V3`` for AVX2, ``X86_V4`` for AVX-512; names as the installed NumPy spells them) and
    ``NPY_DISABLE_CPU_FEATURES`` as set. The crowdlib AVX2 pin does not reach NumPy, which fixes its dispatch when
    it is imported, and NumPy's float64 ``exp`` differs in the last bit between its AVX2 and AVX-512 kernels: the
    synthetic scenes then differ by one grey level in about one pixel per million
    (``benchmarks/simd_data_check.py``), enough for training to diverge from there. Empty lists where NumPy does
    not expose its dispatch tables."""
    try:
        from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy < 2 kept them in numpy.core
        try:
            from numpy.core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
        except ImportError:
            __cpu_baseline__, __cpu_dispatch__, __cpu_features__ = [], [], {}
    return {"baseline": [str(f) for f in __cpu_baseline__],
            "dispatched": [str(f) for f in __cpu_dispatch__ if __cpu_features__.get(f)],
            "disabled_env": os.environ.get("NPY_DISABLE_CPU_FEATURES")}


def check_cpu_isa_pin() -> None:
    """Warn once when the AVX2 pin is asked for (``ATEN_CPU_CAPABILITY=avx2``) but torch's kernels run at another
    level: torch ran CPU kernels before ``import crowdlib``, so this process trains different weights from a pinned
    one."""
    global _WARNED
    if _WARNED or os.environ.get("ATEN_CPU_CAPABILITY", "").lower() != "avx2":
        return
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return
    if capability not in ("AVX2", "DEFAULT"):
        _WARNED = True
        warnings.warn(f"torch's CPU kernels run at {capability}, not the AVX2 pin crowdlib asks for: torch ran CPU "
                      f"kernels before `import crowdlib`, so this process trains different weights from a pinned one. "
                      f"Import crowdlib first, or set ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 before "
                      f"starting Python.", RuntimeWarning, stacklevel=3)
