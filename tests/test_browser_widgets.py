"""The interactive notebooks (9x) in a real browser: JupyterLab + headless Chromium driven by Playwright.

For each widget notebook: open it in JupyterLab, Run All Cells (menu Run > Run All Cells), wait for the ipywidgets
to render, move a slider with the keyboard, and check that the widget's rendered output (its HTML summary and its
image) changes and that no cell shows a traceback. Screenshots before and after land in the test's tmp_path.

Needs Debian's chromium (``/usr/bin/chromium``, or ``CROWDLIB_CHROMIUM``) and the ``playwright`` Python package
(``make browser-test`` installs both; no browser build is ever downloaded); skips otherwise.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CROWDLIB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_S = 180  # Run All Cells of one notebook (each trains a smoke model)
# per notebook: the slider to move (by its label) and a toggle button to click first (91 ends in "learned" mode,
# which disables the global threshold slider); a notebook not listed moves its first enabled slider
# and the count its summary shows (it must be > 0 on the shipped models and change with the slider)
CASES = {"90_widgets.ipynb": {"slider": "threshold", "count": r"detections > [\d.]+: (\d+)"},
         "91_iim_threshold.ipynb": {"slider": "global T", "click": "global", "count": r"count (\d+)"},
         "92_try_your_image.ipynb": {"slider": "threshold", "count": r"count ([\d.]+)"}}
NOTEBOOKS = [n for n in ("90_widgets.ipynb", "91_iim_threshold.ipynb", "92_try_your_image.ipynb")
             if (ROOT / "notebooks" / n).exists()]
# JupyterLab settings: every cell in the DOM (no windowing), no news / update checks (the network is closed)
LAB_SETTINGS = {"notebook-extension/tracker": {"windowingMode": "none"},
                "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                "docmanager-extension/plugin": {"autosave": False}}

# in the page: an error output (or a traceback on stderr); what a widget shows; Run All done (every code cell has
# an execution count) or failed; the widget's output changed
ERROR_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output')].some(o =>
    o.dataset.mimeType === 'application/vnd.jupyter.error' ||
    (o.dataset.mimeType === 'application/vnd.jupyter.stderr' && o.innerText.includes('Traceback')))"""
SIG_JS = """c => ({html: [...c.querySelectorAll('.widget-html')].map(e => e.innerText),
    images: [...c.querySelectorAll('.jp-OutputArea-output img')].map(i => i.src)})"""
DONE_JS = ("() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText);"
           " return (p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t.trim()))) || (" + ERROR_JS + ")(); }")
CHANGED_JS = "([c, before]) => JSON.stringify((" + SIG_JS + ")(c)) !== JSON.stringify(before)"


def _count(signature: dict, pattern: str) -> float | None:
    """The count the widget's summary shows (first match of ``pattern`` in its HTML texts), or ``None``."""
    import re

    for text in signature.get("html", []):
        m = re.search(pattern, text)
        if m:
            return float(m.group(1))
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of notebooks/ (kernel ``crowdlib`` = this interpreter); killed at teardown."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CROWDLIB_CHROMIUM); "
                    "run `make browser-test`")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is absent "
                        "(`make browser-test` installs it)")
    pytest.importorskip("jupyterlab", reason="jupyterlab is absent (the project's `notebooks` extra)")
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)  # running cells saves outputs: never into the repository
    # the kernel gets the inline matplotlib backend, as under a plain `jupyter lab` (the Makefile exports
    # MPLBACKEND=Agg, with which notebook 91's figure shows as "<Figure size ...>" text)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"),
               JUPYTER_PATH=str(tmp / "data"), MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("CROWDLIB_REPORTS", str(tmp / "reports"))
    env.setdefault("CROWDLIB_CACHE", str(tmp / "cache"))
    # the kernel the notebooks name, pinned to the interpreter running the tests (an installed kernelspec may
    # point at another checkout's environment)
    spec = tmp / "data" / "kernels" / "crowdlib"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "crowdlib (.venv)", "language": "python"}))
    settings = tmp / "user-settings"
    for name, value in LAB_SETTINGS.items():
        ext, plugin = name.split("/")
        (settings / "@jupyterlab" / ext).mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / ext / f"{plugin}.jupyterlab-settings").write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp / "server.log").open("w")  # closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
         "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"JupyterLab exited ({proc.returncode}):\n{_tail(tmp / 'server.log')}"
            assert time.monotonic() < deadline, f"JupyterLab not up after 120 s:\n{_tail(tmp / 'server.log')}"
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        yield {"url": url, "token": token, "log": tmp / "server.log"}
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):  # the server and its kernels
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def _api(lab: dict, method: str, path: str):
    req = urllib.request.Request(f"{lab['url']}/api/{path}?token={lab['token']}", method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body else None


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def _signature(cell) -> dict:
    """What the widget shows, apart from the sliders themselves: its HTML texts and each image's source."""
    return cell.evaluate(SIG_JS)


def _digest(sig: dict) -> dict:
    return {"html": sig["html"], "images": [hashlib.sha1(s.encode()).hexdigest()[:10] for s in sig["images"]]}


def _wait(page, js: str, arg=None, timeout_s: float = 60) -> bool:
    """Whether the JS predicate became true within the timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000, polling=500)
        return True
    except PlaywrightTimeout:
        return False


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_widget_notebook_in_browser(lab, notebook, tmp_path):
    from playwright.sync_api import sync_playwright

    case, stem = CASES.get(notebook, {}), Path(notebook).stem
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(60_000)
            # a workspace of its own: only this notebook open (JupyterLab restores a workspace's open tabs)
            page.goto(f"{lab['url']}/lab/workspaces/{stem}/tree/{notebook}?token={lab['token']}")
            page.locator(".jp-StatusBar-TextItem", has_text="crowdlib (.venv) | Idle").wait_for()  # kernel up
            page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
            page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()
            if not _wait(page, DONE_JS, timeout_s=RUN_TIMEOUT_S):
                page.screenshot(path=tmp_path / f"{stem}_timeout.png")
                prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
                pytest.fail(f"{notebook}: Run All Cells not done after {RUN_TIMEOUT_S} s (prompts {prompts}); "
                            f"screenshot in {tmp_path}; server log:\n{_tail(lab['log'])}")
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'], "
                                  ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                                  has_text="Traceback")
            assert errors.count() == 0, f"{notebook}: a cell failed:\n" + "\n---\n".join(errors.all_inner_texts())

            sliders = page.locator(".widget-slider")
            sliders.first.wait_for()  # the widget rendered
            cell = page.locator(".jp-Cell", has=sliders.first)
            if "click" in case:
                cell.locator(".widget-toggle-button", has_text=case["click"]).click()
            slider = (sliders.filter(has=page.locator(".widget-label", has_text=case["slider"])) if "slider" in case
                      else sliders.filter(has=page.locator(".noUi-target:not([disabled])"))).first
            label = slider.locator(".widget-label").inner_text()
            handle = slider.locator(".noUi-handle")
            if not _wait(page, "h => !h.closest('.noUi-target').hasAttribute('disabled')", handle.element_handle()):
                pytest.fail(f"{notebook}: the '{label}' slider stays disabled (after clicking {case.get('click')!r})")
            page.wait_for_timeout(2000)  # let the click's redraw (if any) land
            before, value_before = _signature(cell), slider.locator(".widget-readout").inner_text()
            cell.screenshot(path=tmp_path / f"{stem}_before.png")
            handle.focus()
            for _ in range(5):
                handle.press("ArrowRight")
            value_after = slider.locator(".widget-readout").inner_text()
            assert value_after != value_before, f"{notebook}: the '{label}' slider did not move ({value_before})"
            # the callback runs in the kernel, then the new output renders
            if not _wait(page, CHANGED_JS, [cell.element_handle(), before]):
                cell.screenshot(path=tmp_path / f"{stem}_after.png")
                pytest.fail(f"{notebook}: moving '{label}' {value_before} -> {value_after} changed nothing in the "
                            f"widget's output in 60 s: {_digest(before)}; server log (a callback's traceback "
                            f"may land there):\n{_tail(lab['log'])}")
            after = _signature(cell)
            for _ in range(30):  # one change per key press: wait for the last one to land
                page.wait_for_timeout(1000)
                after, previous = _signature(cell), after
                if after == previous:
                    break
            cell.screenshot(path=tmp_path / f"{stem}_after.png")
            assert errors.count() == 0, f"{notebook}: the callback failed:\n" + "\n".join(errors.all_inner_texts())
            if "count" in case:  # the shipped model finds heads, and the slider changes how many
                counts = [_count(sig, case["count"]) for sig in (before, after)]
                assert counts[0] and counts[0] > 0, f"{notebook}: no heads shown at first: {_digest(before)}"
                assert counts[1] != counts[0], f"{notebook}: the count stayed {counts[0]} when the slider moved"
            print(f"{notebook}: {label} {value_before} -> {value_after}: {_digest(before)} -> {_digest(after)}")
        finally:
            ctx.close()
            for session in _api(lab, "GET", "sessions"):  # free the kernel's memory for the next notebook
                if session["path"] == notebook:
                    _api(lab, "DELETE", f"sessions/{session['id']}")
