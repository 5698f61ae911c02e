"""The course in a real browser: a chapter's widget panel in JupyterLab, and the static book.

JupyterLab runs on 127.0.0.1 with a random port and token, with this environment's kernel,
on a temporary copy of the chapter cut down to what its panel needs, at small sizes (a full
chapter takes minutes even in quick mode); headless Chromium is driven by Playwright.
Screenshots go to build/screenshots/ (git-ignored): before and after a retrain, and on failure.

Needs Chromium (Debian/Ubuntu: ``apt-get install -y chromium``; elsewhere set
``FUSION_KIT_CHROMIUM`` to a Chromium or Chrome binary) and ``pip install -e ".[browser]"``.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from fusion_kit.course import delivery
from fusion_kit.course import CHAPTERS, ROOT, chapter_paths

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "build" / "screenshots"
CHAPTER = CHAPTERS / "05_attention_fusion.ipynb"  # its last code cell is a training panel
SMALL = {"n_subjects": 60, "epochs": 1}  # sizes injected after the parameters cell: the panel, not the results, is tested
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAB_SETTINGS = {  # a quiet JupyterLab: no news or update checks, every cell attached to the page
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def chromium_path() -> str | None:
    candidates = [os.environ.get("FUSION_KIT_CHROMIUM"), "/usr/bin/chromium",
                  *(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome"))]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip('Playwright is not installed: pip install -e ".[browser]"')
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium found: install it with  apt-get install -y chromium  (Debian/Ubuntu), "
                    "or set FUSION_KIT_CHROMIUM to a Chromium or Chrome binary")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def screenshots_on_failure(page, name: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    failure = SCREENSHOTS / f"{name}-failure.png"
    failure.unlink(missing_ok=True)  # only this run's failure is kept
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(failure))
        raise


# ------------------------------------------------------------------ the notebook and the server
def _statements(source: str) -> list[str]:
    """A code cell split into its top-level statements (the whole cell if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [source]
    lines = source.splitlines()
    return [
        "\n".join(lines[(node.decorator_list[0] if getattr(node, "decorator_list", None) else node).lineno - 1:
                         node.end_lineno])
        for node in tree.body
    ]


def panel_notebook(source: Path, target: Path, parameters: dict) -> None:
    """Write what the chapter's last panel needs, with ``parameters`` injected after its parameters cell.

    The parameters cell is kept whole; of the other cells before the panel, only the top-level
    statements that bind a name the panel (or a kept statement) reads, found walking back from
    the panel. Outputs are cleared, so what the page shows comes from this run.
    """
    nb = nbformat.read(source, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    panel = max(i for i in code if re.search(r"\btraining_panel\s*\(", nb.cells[i].source))
    units = []  # (cell index, statement source)
    for i in code:
        if i < panel:
            if "parameters" in nb.cells[i].metadata.get("tags", []):
                units.append((i, nb.cells[i].source))
                override = [f"{k} = {v!r}" for k, v in parameters.items() if k in delivery.cell_names(nb.cells[i].source)[0]]
                units.append((None, "\n".join(override)))  # a cell of its own, after the parameters cell
            else:
                units += [(i, statement) for statement in _statements(nb.cells[i].source)]
    needed = delivery.cell_names(nb.cells[panel].source)[1]
    kept = []
    for cell, statement in reversed(units):
        defined, used = delivery.cell_names(statement)
        is_parameters = cell is not None and "parameters" in nb.cells[cell].metadata.get("tags", [])
        if defined & needed or is_parameters:
            kept.append((cell, statement))
            needed = (needed - defined) | used
    cells = []
    for cell, statement in reversed(kept):
        if cells and cells[-1][0] == cell:
            cells[-1][1].append(statement)
        else:
            cells.append((cell, [statement]))
    new = [nbformat.v4.new_markdown_cell(f"# {source.stem}: what its panel needs")]
    for cell, statements in [*cells, (panel, [nb.cells[panel].source])]:
        tags = ["injected-parameters"] if cell is None else nb.cells[cell].metadata.get("tags", [])
        new.append(nbformat.v4.new_code_cell("\n".join(statements), metadata={"tags": list(tags)}))
    nb.cells = new
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, target)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(folder: Path, state: Path):
    """JupyterLab serving ``folder`` on 127.0.0.1: yields (base URL, token) once its API answers."""
    port, token = _free_port(), secrets.token_hex(16)
    for name, values in LAB_SETTINGS.items():
        path = state / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    extra = [
        f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
    ]
    argv, env = delivery.lab_command(folder, ip="127.0.0.1", port=port, open_browser=False, quick=True,
                                     device="cpu", extra=extra)
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(state / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
        JUPYTER_CONFIG_DIR=str(state / "config"), JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        IPYTHONDIR=str(state / "ipython"), FUSION_KIT_RESULTS=str(state / "results"),
    )
    log = (state / "server.log").open("w")
    server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{(state / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 90 s:\n{(state / 'server.log').read_text()[-3000:]}")
                time.sleep(0.25)  # polling the server's API, the signal that it is up
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


PROMPTS = "Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'), p => p.textContent.trim())"


def _answer_dialogs(page) -> None:
    """Accept any JupyterLab dialog in the way (a kernel choice, a kernel restart notice), saying what it was.

    A loaded machine can make JupyterLab ask which kernel to use, or report a kernel restart,
    and the modal dialog then blocks every click. An error dialog fails the test with its text.
    """
    dialogs = page.locator(".jp-Dialog")
    for _ in range(5):
        if not dialogs.count():
            return
        text = " ".join(dialogs.first.inner_text().split())
        print(f"JupyterLab dialog: {text}")  # shown by pytest when the test fails
        if re.search(r"error|died|failed", text, re.IGNORECASE):
            raise AssertionError(f"JupyterLab showed an error dialog: {text}")
        before = dialogs.count()
        accept = dialogs.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_function("n => document.querySelectorAll('.jp-Dialog').length < n", arg=before, timeout=10_000)


def _run_all(page, attempts: int = 3) -> None:
    """Run All, and wait until every code cell has run.

    Run All issued right after the kernel turns idle is sometimes dropped, whole or after the
    first cell (JupyterLab may swap the kernel it has just started): when the queue empties
    with cells left unrun, issue it again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    idle = page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first
    for _ in range(attempts):
        idle.wait_for(timeout=120_000)
        _answer_dialogs(page)
        page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(f"{PROMPTS}.some(t => t.includes('[*]'))", timeout=15_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")  # the menu may still be open
            continue
        page.wait_for_function(f"!{PROMPTS}.some(t => t.includes('[*]'))", timeout=300_000)
        prompts = page.evaluate(PROMPTS)
        if all(re.fullmatch(r"\[\d+\]:", p) for p in prompts):
            return
        error = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
        if error.count():  # a cell failed: running again will not help
            raise AssertionError(f"a cell failed in JupyterLab:\n{error.first.inner_text()}")
    raise AssertionError(f"Run All did not run every cell (prompts {page.evaluate(PROMPTS)}, {attempts} attempts)")


# ------------------------------------------------------------------ the tests
def test_panel_renders_and_retrains_in_jupyterlab(browser, tmp_path):
    from playwright.sync_api import expect

    if not CHAPTER.is_file():
        pytest.skip(f"{CHAPTER.name} is not in chapters/")
    work = tmp_path / "notebooks"
    work.mkdir()
    notebook = work / CHAPTER.name
    panel_notebook(CHAPTER, notebook, SMALL)
    with jupyterlab(work, tmp_path / "lab") as (url, token):
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        with screenshots_on_failure(page, "panel"):
            page.goto(f"{url}/lab/tree/{notebook.name}?token={token}")
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            _run_all(page)

            panel = page.locator(".jp-CodeCell").last.locator(".jp-OutputArea-output .widget-vbox").first
            train = panel.locator(":scope > .widget-button", has_text="Train")
            expect(train).to_be_visible(timeout=300_000)  # every cell the panel needs has run
            expect(page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).to_have_count(1, timeout=60_000)
            errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]')
            assert errors.count() == 0, errors.first.inner_text()
            assert page.get_by_text("Loading widget").count() == 0
            assert page.get_by_text("Error displaying widget").count() == 0

            status = panel.locator(":scope > .widget-html").last
            figure = panel.locator(":scope > .widget-output img")
            _answer_dialogs(page)
            expect(status).to_contain_text("press Train")
            assert figure.count() == 0
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "panel-before.png"))

            boxes = panel.locator(":scope > .widget-hbox input[type=checkbox]")
            labels = panel.locator(":scope > .widget-hbox .widget-checkbox")
            assert boxes.count() >= 2, "the panel should offer several modalities"
            dropped = labels.last.inner_text().strip()
            boxes.last.uncheck()
            menu = panel.locator(":scope > .widget-dropdown select").first
            current = menu.input_value()
            other = next(o for o in menu.locator("option").all_inner_texts() if o.strip() != current).strip()
            menu.select_option(label=other)
            train.click()

            expect(status).to_contain_text(re.compile(rf"{re.escape(other)} \(.*\).*parameters"), timeout=120_000)
            expect(figure.first).to_be_visible(timeout=30_000)
            assert dropped not in status.inner_text().split(":")[0], "the unticked modality was still used"
            assert figure.first.evaluate("img => img.complete && img.naturalWidth > 100")
            expect(train).to_be_enabled()
            panel.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOTS / "panel-after.png"))
        page.close()


def _has_figure(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_book_opens_with_its_figures(browser, built_book):
    from playwright.sync_api import expect

    chapter = next((p for p in chapter_paths() if _has_figure(p)), None)
    if chapter is None:
        pytest.skip("no chapter has a stored figure yet")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    with screenshots_on_failure(page, "book"):
        page.goto(built_book.as_uri(), wait_until="domcontentloaded")  # redirects to the course map
        link = page.locator(f'main table a.reference.internal[href="{chapter.stem}.html"]')
        expect(link).to_be_visible(timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "book-landing.png"))
        link.click()
        figure = page.locator("main .cell_output img").first
        expect(figure).to_be_visible(timeout=30_000)
        figure.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 100", arg=figure.element_handle())
        page.screenshot(path=str(SCREENSHOTS / "book-chapter.png"))
    page.close()


def test_book_typesets_formulas_without_a_network(browser, built_book):
    """No page asks for anything beyond the site (MathJax is served from _static), and formulas are typeset."""
    from playwright.sync_api import expect

    html = built_book.parent
    for page_file in html.glob("*.html"):
        text = page_file.read_text(encoding="utf-8")
        remote = re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', text)
        assert not remote, f"{page_file.name} loads {remote[0]}"
    with_math = next(p for p in sorted(html.glob("[0-9][0-9]_*.html")) if 'class="math' in p.read_text(encoding="utf-8"))
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    asked = []
    page.on("request", lambda request: asked.append(request.url))
    with screenshots_on_failure(page, "book-math"):
        page.goto(with_math.as_uri(), wait_until="load")
        expect(page.locator("main .MathJax").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "book-math.png"))
        page.goto((html / "notation.html").as_uri(), wait_until="load")  # a Markdown page: symbols in tables
        expect(page.locator("main table .MathJax").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "book-notation.png"), full_page=True)
    page.close()
    assert [u for u in asked if u.startswith(("http://", "https://"))] == []
