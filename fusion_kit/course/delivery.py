"""Hand the course out: a static book to read, student copies without solutions, JupyterLab for a workshop.

``build_book`` (the executed chapters as a static HTML site, Jupyter Book 1.x), ``write_student_copies``
(the chapters without their solutions, exercise outputs cleared) and ``lab_command`` (JupyterLab on the
chapters with this environment's kernel); ``fusion-kit book | student | lab`` call them.

Nothing here executes a chapter unless asked: the book shows the outputs stored in
``chapters/``, and student copies keep every output except those of the exercises.
A solution is a cell tagged ``solution`` (code, or the Markdown answers to a chapter's questions); an exercise is a code cell tagged
``exercise`` or one that calls a check of ``fusion_kit.exercises`` (``exercises.check_masked_softmax(...)``).
"""
from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from .runner import CHAPTERS, ROOT

__all__ = [
    "SOLUTION_TAG",
    "EXERCISE_TAG",
    "is_solution",
    "is_exercise",
    "cell_names",
    "solution_leaks",
    "student_notebook",
    "write_student_copies",
    "book_notebook",
    "landing_page",
    "notation_page",
    "build_book",
    "lab_command",
]

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
BOOK_TEMPLATE = ROOT / "book"
NOTATION = CHAPTERS / "notation.md"
_CHECK_CALL = re.compile(r"\bexercises\.check_\w+\s*\(")
_HEADING = re.compile(r"^(#{1,6})\s+\S")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


# ------------------------------------------------------------------- cells
def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_solution(cell) -> bool:
    """A reference solution: a code cell tagged ``solution``, or a Markdown cell so tagged (the answers to a
    chapter's questions)."""
    return cell.get("cell_type") in ("code", "markdown") and SOLUTION_TAG in _tags(cell)


def is_exercise(cell) -> bool:
    """An answer cell: tagged ``exercise``, or a (non-solution) code cell calling ``exercises.check_*``."""
    if cell.get("cell_type") != "code" or is_solution(cell):
        return False
    return EXERCISE_TAG in _tags(cell) or bool(_CHECK_CALL.search(cell.get("source", "")))


class _Names(ast.NodeVisitor):
    """Names a cell binds at notebook level and the notebook-level names it reads.

    Inside a function, lambda, class or comprehension, the scope's own arguments and
    assignments are local: reading them is not reading the notebook's variables.
    """

    def __init__(self) -> None:
        self.defined: set[str] = set()
        self.used: set[str] = set()
        self.scopes: list[set[str]] = []

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if not any(node.id in scope for scope in self.scopes):
                self.used.add(node.id)
        elif not self.scopes:
            self.defined.add(node.id)

    def visit_Import(self, node) -> None:
        if not self.scopes:
            self.defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)

    visit_ImportFrom = visit_Import

    def _scope(self, node, name: str | None = None, outside: Sequence = ()) -> None:
        if name and not self.scopes:
            self.defined.add(name)
        for child in outside:  # evaluated in the enclosing scope
            self.visit(child)
        local = {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
        local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        self.scopes.append(local)
        for child in ast.iter_child_nodes(node):
            if not any(child is o for o in outside):
                self.visit(child)
        self.scopes.pop()

    def visit_FunctionDef(self, node) -> None:
        defaults = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        self._scope(node, node.name, [*node.decorator_list, *defaults])

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        self._scope(node, node.name, [*node.decorator_list, *node.bases])

    def visit_Lambda(self, node) -> None:
        self._scope(node, None, [*node.args.defaults])

    def _comprehension(self, node) -> None:
        self._scope(node, None, [node.generators[0].iter])

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension


def cell_names(source: str) -> tuple[set[str], set[str]]:
    """``(defined, used)``: the names a code cell binds at top level and the names it reads anywhere.

    IPython magics and shell lines (``%...``, ``!...``) are skipped; a cell that still does not
    parse gives two empty sets.
    """
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(), set()
    names = _Names()
    names.visit(tree)
    return names.defined, names.used


def solution_leaks(nb) -> list[tuple[int, list[str]]]:
    """Cells that read a name only a solution cell defines: ``[(cell index, [names]), ...]``.

    A student copy has no solution cells, so such a cell would fail with a ``NameError``.
    """
    course: set[str] = set()  # bound by cells a student copy keeps
    only_in_solutions: set[str] = set()
    leaks = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        defined, used = cell_names(cell.source)
        if is_solution(cell):
            only_in_solutions |= defined - course
            continue
        missing = sorted((used & only_in_solutions) - defined)
        if missing:
            leaks.append((index, missing))
        course |= defined
        only_in_solutions -= defined
    return leaks


def _heading_level(cell, *, alone: bool = True) -> int | None:
    """The level of the heading a Markdown cell opens with (``alone``: and is nothing but), else None."""
    if cell is None or cell.get("cell_type") != "markdown":
        return None
    lines = [line for line in cell.source.strip().splitlines() if line.strip()]
    match = _HEADING.match(lines[0]) if lines and (len(lines) == 1 or not alone) else None
    return len(match.group(1)) if match else None


def _drop_empty_sections(cells: list) -> list:
    """Drop heading-only Markdown cells left with nothing under them (e.g. "### Solutions")."""
    kept = []
    for i, cell in enumerate(cells):
        level = _heading_level(cell)
        after = cells[i + 1] if i + 1 < len(cells) else None
        next_level = _heading_level(after, alone=False)
        if level is not None and (after is None or (next_level is not None and next_level <= level)):
            continue
        kept.append(cell)
    return kept


def student_notebook(nb):
    """A copy of ``nb`` without solution cells, with the exercise cells' outputs cleared."""
    removed = any(is_solution(c) for c in nb.cells)
    student = copy.deepcopy(nb)
    cells = []
    for cell in student.cells:
        if is_solution(cell):
            continue
        if is_exercise(cell):
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    student.cells = _drop_empty_sections(cells) if removed else cells
    return student


def write_student_copies(paths: Sequence[Path], out: Path) -> list[Path]:
    """Write a student copy of each chapter into ``out``, and the notation page; check them all before writing any.

    Raises ``ValueError`` naming the chapter, cell and names when a kept cell reads a name
    that only a solution defines.
    """
    import nbformat

    notebooks = {path: nbformat.read(path, as_version=4) for path in paths}
    problems = [
        f"{path.name} cell {index}: uses {', '.join(names)}, defined only in a solution cell"
        for path, nb in notebooks.items()
        for index, names in solution_leaks(nb)
    ]
    if problems:
        raise ValueError("student copies would fail without the solutions; define these outside the "
                         "solution cells first:\n  " + "\n  ".join(problems))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in notebooks.items():
        target = out / path.name
        nbformat.write(student_notebook(nb), target)
        written.append(target)
    (out / NOTATION.name).write_text(notation_page(), encoding="utf-8")  # beside the chapters, not one of them
    return written


# -------------------------------------------------------------------- book
def _is_panel(cell) -> bool:
    return bool(re.search(r"\b(training_panel|TrainingPanel)\s*\(", cell.get("source", "")))


def book_notebook(nb):
    """A copy of ``nb`` for the static site: solutions collapsed, live widgets replaced by a note.

    A stored widget view needs a running kernel (or JavaScript from the network), so it is
    dropped; the figure of the same function, called once above every panel, stays.
    """
    import nbformat

    book = copy.deepcopy(nb)
    book.metadata.pop("widgets", None)
    cells = []
    for cell in book.cells:
        cells.append(cell)
        if cell.get("cell_type") != "code":
            continue
        if is_solution(cell):
            cell.metadata["tags"] = [*_tags(cell), "hide-cell"]
        had_widget = any(_WIDGET_VIEW in o.get("data", {}) for o in cell.outputs)
        cell.outputs = [o for o in cell.outputs if _WIDGET_VIEW not in o.get("data", {})]
        if had_widget and _is_panel(cell):
            cells.append(nbformat.v4.new_markdown_cell(
                "*In JupyterLab this cell shows the interactive panel: tick modalities, pick a strategy "
                "and press **Train**. Open the chapter with `fusion-kit lab` to use it.*"
            ))
    book.cells = cells
    return book


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.get("cell_type") == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _readme_parts(readme: Path) -> tuple[str, str, dict[str, str]]:
    """The README's title, its opening paragraphs, and the chapter table as ``{stem: topic}``."""
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    lines = text.splitlines()
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), "The course")
    opening: list[str] = []
    started = False
    for line in lines:
        if line.startswith("# "):
            started = True
            continue
        if line.startswith("## "):
            break
        if started:
            opening.append(line)
    topics = {}
    for line in lines:
        match = re.match(r"^\|\s*`(\d\d_[\w-]+)`\s*\|\s*(.*?)\s*\|\s*$", line)
        if match:
            topics[match.group(1)] = match.group(2)
    return title, "\n".join(opening).strip(), topics


def landing_page(paths: Sequence[Path], readme: Path = ROOT / "README.md") -> str:
    """The book's first page: the README's opening and the course map, one linked row per chapter."""
    import nbformat

    title, opening, topics = _readme_parts(readme)
    rows = []
    for path in paths:
        topic = topics.get(path.stem) or _title(nbformat.read(path, as_version=4), path.stem)
        rows.append(f"| [{path.stem}]({path.name}) | {topic} |")
    return "\n".join([
        f"# {title}",
        "",
        opening,
        "",
        "## The course map",
        "",
        "| chapter | topic |",
        "|---|---|",
        *rows,
        "",
        "Every symbol and term the chapters use, and every strategy by where, what and how it fuses: "
        "[notation and glossary](notation.md).",
        "",
        "Each chapter is a notebook, shown here with the outputs of a full-size run. To run it yourself, "
        "open the chapters in JupyterLab (`make lab` in a clone of the course) and work through them in order; "
        "the interactive panels and the exercises need a running kernel.",
        "",
    ])


def notation_page(path: Path = NOTATION) -> str:
    """The notation and glossary page, ending with every registered strategy by the intermediate-fusion review's
    where, what and how (``models.taxonomy_table``, so the table follows the registry)."""
    from ..models import taxonomy_table
    from ..report import markdown_table

    table = taxonomy_table().map(lambda text: str(text).replace("|", "\\|"))
    table["how"] = "`" + table["how"] + "`"
    return "\n".join([
        path.read_text(encoding="utf-8").rstrip(),
        "",
        "## Every strategy by where, what and how",
        "",
        "*Where* the modalities meet (for a model built on MRI, PET and the clinical table), *what* is fused, and *how*:",
        "the equation of the strategy's docstring. Generated from the registry when this page was written.",
        "",
        markdown_table(table),
    ])


def _toc(paths: Sequence[Path]) -> str:
    files = [*(f"- file: {p.stem}" for p in paths), "- file: notation"]
    return "\n".join(["format: jb-book", "root: intro", "chapters:", *files, ""])


def _jupyter_book() -> list[str]:
    here = Path(sys.executable).parent
    exe = shutil.which("jupyter-book", path=str(here)) or shutil.which("jupyter-book")
    if exe is None:
        raise RuntimeError('Jupyter Book is not installed: run  pip install -e ".[book]"  (Jupyter Book 1.x)')
    return [exe]


def _copy_mathjax(target: Path) -> None:
    """MathJax served from the site itself (the copy the ``jupyter-server-mathjax`` package ships), so formulas
    typeset without a network. It goes to the site's root (``html_extra_path`` in ``book/_config.yml``), not to
    ``_static``, whose every script Jupyter Book would load on every page."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise RuntimeError("the book serves MathJax itself from the jupyter-server-mathjax package, which is not "
                           "installed: pip install -e \".[book]\"") from None
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", target)


def build_book(
    paths: Sequence[Path], out: Path, *, template: Path = BOOK_TEMPLATE, readme: Path = ROOT / "README.md",
    quiet: bool = True,
) -> Path:
    """Build the chapters, as stored, into a static HTML site under ``out``; return its ``index.html``.

    ``out/source`` holds what Jupyter Book reads (the configuration from ``template``, a generated
    table of contents and landing page, and a book copy of every chapter); ``out/_build/html`` the site.
    """
    import nbformat

    out = Path(out).resolve()
    source = out / "source"
    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    config = template / "_config.yml"
    if not config.is_file():
        raise FileNotFoundError(f"no book configuration at {config}")
    shutil.copy(config, source / "_config.yml")
    _copy_mathjax(source / "_site" / "mathjax")
    for path in paths:
        nbformat.write(book_notebook(nbformat.read(path, as_version=4)), source / path.name)
    (source / "intro.md").write_text(landing_page(paths, readme), encoding="utf-8")
    (source / "notation.md").write_text(notation_page(), encoding="utf-8")
    (source / "_toc.yml").write_text(_toc(paths), encoding="utf-8")
    html = out / "_build" / "html"
    if html.parent.exists():
        shutil.rmtree(html.parent)  # a clean build: no page left from a chapter that was renamed
    command = [*_jupyter_book(), "build", str(source), "--path-output", str(out), "--builder", "html"]
    done = subprocess.run(command, capture_output=True, text=True)
    log = done.stdout + done.stderr
    if done.returncode != 0 or not (html / "index.html").is_file():
        tail = "\n".join(log.strip().splitlines()[-30:])
        raise RuntimeError(f"the book did not build (exit code {done.returncode}):\n{tail}")
    if not quiet:
        warnings = [line for line in log.splitlines() if "WARNING" in line]
        print("\n".join(warnings) if warnings else "built without warnings")
    return html / "index.html"


# --------------------------------------------------------------------- lab
def lab_command(
    folder: Path = CHAPTERS,
    *,
    ip: str | None = None,
    port: int | None = None,
    open_browser: bool = True,
    quick: bool = False,
    device: str | None = None,
    extra: Iterable[str] = (),
    environ: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that open JupyterLab on ``folder`` with this Python's kernel.

    The environment's ``bin`` comes first on ``PATH`` and its ``share/jupyter`` first on
    ``JUPYTER_PATH``, so the kernel found is the course's, not one from the user's home.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}: give the folder that holds the chapters")
    env = dict(os.environ if environ is None else environ)
    prefix = Path(sys.prefix)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]).rstrip(os.pathsep)
    env["JUPYTER_PATH"] = os.pathsep.join(
        [str(prefix / "share" / "jupyter"), env.get("JUPYTER_PATH", "")]
    ).rstrip(os.pathsep)
    if quick:
        env["FUSION_KIT_QUICK"] = "1"
    if device:
        env["FUSION_KIT_DEVICE"] = device
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder.resolve()}"]
    if ip:
        argv.append(f"--ip={ip}")
    if port is not None:
        argv.append(f"--port={port}")
    if not open_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # Jupyter refuses root without it (containers, cloud GPU machines)
    argv += list(extra)
    return argv, env
