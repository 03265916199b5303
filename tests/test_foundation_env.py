"""The environment files agree, notebooks are committed clean, the Makefile has its targets."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(pyproject["dependencies"])
    for extra in pyproject["optional-dependencies"].values():
        declared |= set(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {r for r in pip_section if not r.startswith("-e")}
    assert {_name(r) for r in listed} == {_name(r) for r in declared}
    assert listed == declared, f"version pins differ: {sorted(listed ^ declared)}"
    assert any(r.startswith("-e .") for r in pip_section), "environment.yml must install the project itself"


def test_torch_pins():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.14" in deps and "torchvision>=0.29" in deps


def test_notebooks_committed_without_outputs():
    nbs = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert nbs, "no notebooks found"
    for nb in nbs:
        doc = json.loads(nb.read_text())
        for cell in doc["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs"), f"{nb.name} is committed with outputs"
                assert cell.get("execution_count") is None, f"{nb.name} has execution counts"


def test_notebooks_have_literal_parameters_cell():
    import ast

    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        doc = json.loads(nb.read_text())
        code = [c for c in doc["cells"] if c["cell_type"] == "code"]
        assert code and "parameters" in code[0].get("metadata", {}).get("tags", []), \
            f"{nb.name}: the first code cell must be tagged 'parameters'"
        tree = ast.parse("".join(code[0]["source"]))
        for node in tree.body:
            assert isinstance(node, ast.Assign), f"{nb.name}: parameters cell may only assign literals"
            ast.literal_eval(node.value)  # raises if not a literal
        assert any(isinstance(n, ast.Assign) and n.targets[0].id == "profile" for n in tree.body), \
            f"{nb.name}: parameters must include 'profile'"


def test_papermill_reads_every_parameter_of_every_notebook():
    """``papermill --help-notebook`` and papermill's parameter check see each assigned name (papermill skips a line
    holding more than one '=', e.g. an equation in its comment, with 'Unable to parse line')."""
    import ast

    import papermill as pm

    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        doc = json.loads(nb.read_text())
        first = next(c for c in doc["cells"] if c["cell_type"] == "code")
        names = {n.targets[0].id for n in ast.parse("".join(first["source"])).body}
        seen = set(pm.inspect_notebook(str(nb)))
        assert seen == names, f"{nb.name}: papermill misses {sorted(names - seen)}"


def test_params_profiles_only_name_notebook_parameters():
    import ast

    for profile in ("smoke", "default"):
        for nb in sorted((ROOT / "notebooks").glob("[0-8][0-9]_*.ipynb")):
            pfile = ROOT / "params" / profile / f"{nb.stem}.yaml"
            assert pfile.is_file(), f"missing {pfile.relative_to(ROOT)}"
            doc = json.loads(nb.read_text())
            first = next(c for c in doc["cells"] if c["cell_type"] == "code")
            names = {n.targets[0].id for n in ast.parse("".join(first["source"])).body}
            params = yaml.safe_load(pfile.read_text()) or {}
            unknown = set(params) - names
            assert not unknown, f"{pfile.relative_to(ROOT)} sets unknown parameters {sorted(unknown)}"


def test_makefile_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("setup", "reproduce", "smoke", "test", "lab", "clean"):
        assert re.search(rf"^{target}:", text, re.M), f"Makefile lacks target {target}"
    assert "--nbval-lax" in text and "--nbval-current-env" in text and "nbval-sanitize-with" in text


def test_ci_script_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "set -e" in ci


def test_lock_file_pins_every_declared_package_within_its_range():
    """requirements-lock.txt (the versions that made reports/) pins each dependency exactly, inside pyproject's ranges."""
    from packaging.requirements import Requirement

    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"requirements-lock.txt: {line!r} is not an exact pin"
            name, version = line.split("==", 1)
            pins[_name(name)] = version
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(pyproject["dependencies"]) + [r for extra in pyproject["optional-dependencies"].values()
                                                  for r in extra]
    for req in map(Requirement, declared):
        key = _name(req.name)
        assert key in pins, f"{req.name} is not pinned in requirements-lock.txt"
        assert req.specifier.contains(pins[key], prereleases=True), f"{req.name}=={pins[key]} is outside {req}"
    makefile = (ROOT / "Makefile").read_text()
    assert "LOCK ?= requirements-lock.txt" in makefile and "-c $(LOCK)" in makefile
