"""Honest provenance: the cache key carries the training code's version, every cached model a process used is
logged with the code that trained it, a dirty tree's diff is hashed, and reports/ is not written from a dirty
tree unless asked."""
from __future__ import annotations

import hashlib
import importlib.util
import subprocess
from pathlib import Path

import pytest
import torch

from crowdlib import repro

ROOT = Path(__file__).resolve().parents[1]


def test_cache_key_carries_the_code_version(tmp_path, monkeypatch):
    path = repro.cache_path({"a": 1}, "sdnet", tmp_path)
    assert path.name == f"{repro.config_hash({'a': 1})}-{repro.code_version('sdnet')}.pt"
    assert repro.code_version("sdnet") != repro.code_version("iim")  # different source files
    # an edit to a method's training code gives another key: simulate it with another source list
    monkeypatch.setitem(repro.CODE_SOURCES, "toy_method", ("repro.py",))
    monkeypatch.setattr(repro, "_CODE_VERSIONS", {})
    v1 = repro.code_version("toy_method")
    monkeypatch.setitem(repro.CODE_SOURCES, "toy_method", ("repro.py", "study.py"))
    monkeypatch.setattr(repro, "_CODE_VERSIONS", {})
    assert repro.code_version("toy_method") != v1


def test_cache_uses_record_trained_and_loaded_models(tmp_path, monkeypatch):
    monkeypatch.setattr(repro, "_CACHE_USES", [])
    train = lambda cfg: {"w": torch.ones(1)}  # noqa: E731
    repro.get_or_train({"lr": 1}, train, name="toy", cache_dir=tmp_path / "a")
    repro.get_or_train({"lr": 1}, train, name="toy", cache_dir=tmp_path / "a")  # same key: logged once
    monkeypatch.setattr(repro, "_CACHE_USES", [])
    repro.get_or_train({"lr": 1}, train, name="toy", cache_dir=tmp_path / "a")  # a new process would load it
    (use,) = repro.cache_uses()
    assert use["how"] == "loaded" and use["name"] == "toy"
    assert use["key"] == repro.cache_path({"lr": 1}, "toy", tmp_path / "a").stem
    assert use["trained_torch"] == str(torch.__version__) and use["trained_utc"]
    assert use["trained_git_sha"] == repro.git_info()["git_sha"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_git_info_hashes_the_uncommitted_diff(tmp_path):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@example.com")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "r.md").write_text("old\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    clean = repro.git_info(tmp_path)
    assert clean["git_dirty"] is False and clean["git_diff_sha256"] is None
    (tmp_path / "reports" / "r.md").write_text("rewritten by a reproduction\n")
    assert repro.git_info(tmp_path)["git_dirty"] is False  # reports/ does not make the code dirty
    (tmp_path / "code.py").write_text("x = 2\n")
    dirty = repro.git_info(tmp_path)
    diff = subprocess.run(["git", "diff", "HEAD", "--", ".", ":(exclude)reports"], cwd=tmp_path,
                          capture_output=True, check=True).stdout
    assert dirty["git_dirty"] is True and dirty["git_diff_sha256"] == hashlib.sha256(diff).hexdigest()


def _reproduce_module():
    spec = importlib.util.spec_from_file_location("reproduce_tool", ROOT / "tools" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reproduce_refuses_a_dirty_tree_for_reports(monkeypatch, capsys):
    tool = _reproduce_module()
    monkeypatch.setattr(tool, "tree_dirty", lambda: True)
    with pytest.raises(SystemExit) as info:
        tool.main(["--out", "reports", "--only", "zz_no_such_notebook"])
    assert info.value.code == 2 and "--allow-dirty" in capsys.readouterr().err
    # with the flag it goes on (and finds no notebook), and a scratch folder is never refused
    assert tool.main(["--out", "reports", "--only", "zz_no_such_notebook", "--allow-dirty"]) == 2
    assert tool.main(["--out", ".smoke-reports", "--only", "zz_no_such_notebook"]) == 2


def test_group_processes_share_the_cores():
    tool = _reproduce_module()
    assert tool.group_env(2, {}, cores=2)["CROWDLIB_STUDY_JOBS"] == "1"
    assert tool.group_env(2, {}, cores=16)["CROWDLIB_STUDY_JOBS"] == "8"
    assert tool.group_env(4, {"CROWDLIB_STUDY_JOBS": ""}, cores=2)["CROWDLIB_STUDY_JOBS"] == "1"
    assert tool.group_env(2, {"CROWDLIB_STUDY_JOBS": "3"}, cores=2)["CROWDLIB_STUDY_JOBS"] == "3"  # the user's
