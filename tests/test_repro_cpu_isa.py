"""The CPU instruction-set pin (``crowdlib.CPU_ISA_ENV``): torch's CPU kernels follow the host's instruction set,
and an AVX-512 host trains different weights from an AVX2 one with the same code, seed and threads. ``import
crowdlib`` caps both oneDNN and ATen at AVX2 on x86-64 so that such machines agree; provenance records the path."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
X86 = platform.machine().lower() in ("x86_64", "amd64")


def _flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _run(code: str, **env_over: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                                            "CROWDLIB_CPU_ISA")}
    env.update(env_over, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)


PROBE = ("import json, crowdlib, torch\n"
         "from crowdlib.repro import cpu_kernel_info\n"
         "torch.nn.functional.conv2d(torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3))\n"
         "print(json.dumps(cpu_kernel_info()))\n")


@pytest.mark.skipif(not X86 or "avx2" not in _flags(), reason="the AVX2 pin applies to x86-64 hosts with AVX2")
def test_import_crowdlib_pins_avx2_and_provenance_says_so() -> None:
    out = _run(PROBE)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["aten_capability"] == "AVX2"
    assert info["env"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


def test_native_opt_out_and_the_users_own_values_win() -> None:
    out = _run(PROBE, CROWDLIB_CPU_ISA="native")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["env"] == {"ONEDNN_MAX_CPU_ISA": None,
                                                                        "ATEN_CPU_CAPABILITY": None}
    out = _run(PROBE, ONEDNN_MAX_CPU_ISA="SSE41")
    assert json.loads(out.stdout.strip().splitlines()[-1])["env"]["ONEDNN_MAX_CPU_ISA"] == "SSE41"


@pytest.mark.skipif(not X86 or "avx512f" not in _flags(), reason="needs a host above AVX2 to see the pin missed")
def test_kernels_chosen_before_import_crowdlib_are_named_in_a_warning() -> None:
    code = ("import warnings, torch\n"
            "torch.nn.functional.conv2d(torch.randn(1, 3, 8, 8), torch.randn(2, 3, 3, 3)); torch.randn(8).exp()\n"
            "import crowdlib\n"
            "from crowdlib.repro import fixed_threads\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    with fixed_threads():\n"
            "        pass\n"
            "print([str(x.message) for x in w if issubclass(x.category, RuntimeWarning)])\n")
    out = _run(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "not the AVX2 pin" in out.stdout and "Import crowdlib first" in out.stdout


def test_provenance_records_numpy_dispatch_and_the_users_switch() -> None:
    out = _run(PROBE)
    assert out.returncode == 0, out.stderr[-2000:]
    simd = json.loads(out.stdout.strip().splitlines()[-1])["numpy_simd"]
    assert set(simd) == {"baseline", "dispatched", "disabled_env"}
    assert simd["disabled_env"] is None and all(isinstance(f, str) for f in simd["dispatched"])
    if "X86_V4" not in simd["dispatched"]:
        pytest.skip("NumPy dispatches no X86_V4 (AVX-512) kernels on this host")
    off = "X86_V4 AVX512_ICL AVX512_SPR"
    out = _run(PROBE, NPY_DISABLE_CPU_FEATURES=off)
    assert out.returncode == 0, out.stderr[-2000:]
    simd = json.loads(out.stdout.strip().splitlines()[-1])["numpy_simd"]
    assert "X86_V4" not in simd["dispatched"] and simd["disabled_env"] == off
