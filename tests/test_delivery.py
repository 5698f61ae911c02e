"""The course as it is handed out: student copies, the static book, and the JupyterLab command."""
import ast
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest

from fusion_kit.models import STRATEGIES
from fusion_kit.course import cli, delivery, runner

NOT_SOLVED = "Not yet solved"


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = list(cells)
    return nb


def _code(source, tags=(), text=None):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = list(tags)
    if text is not None:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        cell.execution_count = 1
    return cell


def _md(source):
    return nbformat.v4.new_markdown_cell(source)


def _texts(cell):
    return "".join(o.get("text", "") or str(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", []))


def _small_chapter():
    return _nb(
        _md("# 99 · A chapter"),
        _code("x = 1\nprint(x)", text="1\n"),
        _md("## Exercises\n\n**1.** Double x."),
        _code("answer = ...\nexercises.check_double(answer)", text="Correct\n"),
        _code("print('not an answer')", text="not an answer\n"),
        _md("### Solutions"),
        _code("answer = 2 * x\nexercises.check_double(answer)", tags=["solution"], text="Correct\n"),
        _md("## References\n- a paper"),
    )


def test_student_copy_drops_solutions_and_clears_exercise_outputs():
    nb = _small_chapter()
    student = delivery.student_notebook(nb)
    sources = [c.source for c in student.cells]
    assert not any(delivery.is_solution(c) for c in student.cells)
    assert "### Solutions" not in sources, "a heading left with nothing under it is dropped"
    assert "## References\n- a paper" in sources
    exercise = next(c for c in student.cells if "check_double" in c.source)
    assert exercise.outputs == [] and exercise.execution_count is None
    assert _texts(student.cells[1]) == "1\n" and _texts(student.cells[4]) == "not an answer\n"
    assert len(nb.cells) == 8 and nb.cells[3].outputs, "the chapter itself is left as it was"


def test_cells_that_need_a_solution_are_named_before_anything_is_written(tmp_path):
    nb = _nb(
        _code("def helper():\n    return 3", tags=["solution"]),
        _code("y = [helper() for _ in range(2)]"),
        _code("def local(helper):\n    return helper"),  # an argument, not the solution's name
    )
    assert delivery.solution_leaks(nb) == [(1, ["helper"])]
    path = tmp_path / "chapters" / "01_leaky.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match=r"01_leaky.ipynb cell 1: uses helper, defined only in a solution"):
        delivery.write_student_copies([path], tmp_path / "student")
    assert not (tmp_path / "student").exists()


def test_names_a_cell_defines_and_reads():
    defined, used = delivery.cell_names(
        "import os.path\n%time x = 1\nf = lambda a: a + b\nfor i in r:\n    pass\nq = [k for k in ks if k > t]"
    )
    assert defined == {"os", "f", "i", "q"}
    assert used == {"b", "r", "ks", "t"}


def test_every_chapter_has_a_student_copy(tmp_path):
    paths = runner.chapter_paths()
    written = delivery.write_student_copies(paths, tmp_path)
    assert [p.name for p in written] == [p.name for p in paths]
    assert any(delivery.is_solution(c) for p in paths for c in nbformat.read(p, as_version=4).cells)
    notation = (tmp_path / "notation.md").read_text(encoding="utf-8")  # the reading aid travels with the copies
    assert "## Glossary" in notation and "$h_m = f_m(x_m)$" in notation
    assert all(f"| {name} |" in notation for name in STRATEGIES), "the table lists every registered strategy"
    for path, copy in zip(paths, written):
        original, student = nbformat.read(path, as_version=4), nbformat.read(copy, as_version=4)
        assert not any(delivery.is_solution(c) for c in student.cells)
        assert all(not c.outputs for c in student.cells if delivery.is_exercise(c))
        kept = [c for c in original.cells if not delivery.is_solution(c) and not delivery.is_exercise(c)
                and c.cell_type == "code"]
        assert sum(bool(c.outputs) for c in kept) == sum(
            bool(c.outputs) for c in student.cells if c.cell_type == "code" and not delivery.is_exercise(c)
        ), f"{path.name}: outputs outside the exercises must stay"


@pytest.mark.slow
def test_every_student_copy_runs_top_to_bottom(tmp_path, monkeypatch, capsys):
    """`fusion-kit student --run --quick`, as an instructor runs it, from a folder outside the course:
    every chapter without its solutions executes, and every check left to the student says not yet solved."""
    monkeypatch.setenv("FUSION_KIT_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)  # paths inside the chapters must not depend on where they run
    out = tmp_path / "handout"
    assert cli.main(["student", "--out", str(out), "--run", "--quick"]) == 0, capsys.readouterr().err
    for path in runner.chapter_paths():
        executed = nbformat.read(out / "executed" / path.name, as_version=4)
        answers = [c for c in executed.cells if delivery.is_exercise(c) and "..." in c.source
                   and "exercises.check_" in c.source]  # a skeleton cell alone (the capstone's class) prints nothing
        for cell in answers:
            assert NOT_SOLVED in _texts(cell), f"{path.name}: {cell.source!r} printed {_texts(cell)!r}"
    assert (out / "executed" / "results" / "benchmark.md").is_file()  # chapter 08's table, beside the executed copies


def test_book_copy_collapses_solutions_and_replaces_live_widgets():
    panel = _code("widgets.training_panel(run, modalities=['mri'], strategies=['concat'])")
    panel.outputs = [nbformat.v4.new_output(
        "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "abc"}, "text/plain": "VBox()"}
    )]
    nb = _small_chapter()
    nb.cells.insert(2, panel)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    book = delivery.book_notebook(nb)
    assert "widgets" not in book.metadata
    shown = book.cells[2]
    assert shown.outputs == [] and "fusion-kit lab" in book.cells[3].source
    solution = next(c for c in book.cells if delivery.is_solution(c))
    assert "hide-cell" in solution.metadata["tags"]


def test_landing_page_is_the_course_map(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# A course\n\nLearn things.\n\n## Quick start\n\n| chapter | topic |\n|---|---|\n"
                      "| `00_intro` | the map |\n| `05_more` | not written yet |\n")
    nbformat.write(_nb(_md("# 00 · Hello")), tmp_path / "00_intro.ipynb")
    nbformat.write(_nb(_md("# 03 · An extra chapter")), tmp_path / "03_extra.ipynb")
    page = delivery.landing_page(runner.chapter_paths(folder=tmp_path), readme)
    assert page.startswith("# A course\n\nLearn things.")
    assert "| [00_intro](00_intro.ipynb) | the map |" in page
    assert "| [03_extra](03_extra.ipynb) | 03 · An extra chapter |" in page
    assert "05_more" not in page, "only chapters that exist are on the map"


def test_book_has_every_chapter_with_its_figures(built_book):
    html = built_book.parent
    landing = (html / "intro.html").read_text(encoding="utf-8")
    shown = 0
    for path in runner.chapter_paths():
        page = html / f"{path.stem}.html"
        assert page.is_file(), f"no page for {path.name}"
        assert f'href="{path.stem}.html"' in landing, f"the course map does not link {path.stem}"
        text = page.read_text(encoding="utf-8")
        figures = sum("image/png" in o.get("data", {}) for c in nbformat.read(path, as_version=4).cells
                      if c.cell_type == "code" for o in c.outputs)
        sources = re.findall(r'<img[^>]*src="(_images/[^"]+)"', text)
        assert len(sources) >= figures, f"{page.name}: {len(sources)} images for {figures} stored figures"
        for src in sources:
            assert (html / src).stat().st_size > 1000, f"{page.name}: {src} is missing or empty"
        assert "application/vnd.jupyter.widget-view+json" not in text, "live widgets cannot work in a static page"
        shown += figures
    assert shown, "no chapter has a stored figure: were the chapters executed?"
    assert 'href="notation.html"' in landing, "the landing page links the notation and glossary"
    notation = (html / "notation.html").read_text(encoding="utf-8")
    assert "Glossary" in notation and all(f">{name}<" in notation for name in STRATEGIES)


def test_lab_command_uses_this_environment(tmp_path):
    argv, env = delivery.lab_command(tmp_path, ip="0.0.0.0", port=9999, open_browser=False, quick=True,
                                     device="cuda", environ={"PATH": "/usr/bin", "JUPYTER_PATH": "/elsewhere"})
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in argv
    assert {"--ip=0.0.0.0", "--port=9999", "--no-browser"} <= set(argv)
    assert ("--allow-root" in argv) == (os.geteuid() == 0)
    assert env["FUSION_KIT_QUICK"] == "1" and env["FUSION_KIT_DEVICE"] == "cuda"
    assert env["PATH"].split(os.pathsep) == [str(Path(sys.executable).parent), "/usr/bin"]
    assert env["JUPYTER_PATH"].split(os.pathsep) == [str(Path(sys.prefix) / "share" / "jupyter"), "/elsewhere"]
    default, env = delivery.lab_command(environ={})
    assert f"--ServerApp.root_dir={runner.CHAPTERS}" in default and "--no-browser" not in default
    assert "FUSION_KIT_QUICK" not in env and "FUSION_KIT_DEVICE" not in env
    with pytest.raises(FileNotFoundError, match="no folder"):
        delivery.lab_command(tmp_path / "missing")


def test_command_line_dispatches_to_delivery(tmp_path, monkeypatch, capsys):
    launched = []
    monkeypatch.setattr(cli.subprocess, "call", lambda argv, env: launched.append((argv, env)) or 0)
    assert cli.main(["lab", "--no-browser", "--port", "8890", "--quick"]) == 0
    (argv, env), = launched
    assert "--port=8890" in argv and "--no-browser" in argv and env["FUSION_KIT_QUICK"] == "1"
    assert f"--ServerApp.root_dir={runner.CHAPTERS}" in argv
    assert cli.main(["lab", str(tmp_path)]) == 0
    assert f"--ServerApp.root_dir={tmp_path.resolve()}" in launched[-1][0]
    assert cli.main(["lab", "--device", "tpu"]) == 2
    assert "unknown device 'tpu'" in capsys.readouterr().err
    first = runner.chapter_paths()[0]
    out = tmp_path / "student"
    assert cli.main(["student", "--out", str(out), "--only", first.name[:2]]) == 0
    assert sorted(p.name for p in out.iterdir()) == [first.name, "notation.md"]  # the chapter and the reading aid
    assert "1 student copies" in capsys.readouterr().out


# ----------------------------------------------------------- the student copies, answered as a learner would
def _statement_name(node) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return None


def _solution_statements(nb) -> list[tuple[ast.stmt, str]]:
    """Every top-level statement of the solution cells, in order, with its source."""
    found = []
    for cell in nb.cells:
        if delivery.is_solution(cell) and cell.cell_type == "code":
            found += [(node, ast.get_source_segment(cell.source, node)) for node in ast.parse(cell.source).body]
    return found


def _answer(name: str, statements) -> str:
    """The solution's statement that defines ``name``, after the imports and the statements it reads."""
    index = max(i for i, (node, _) in enumerate(statements) if _statement_name(node) == name)
    needed, wanted = {index}, {n.id for n in ast.walk(statements[index][0]) if isinstance(n, ast.Name)}
    for i in range(index - 1, -1, -1):  # what it reads that an earlier solution statement defines
        node, _ = statements[i]
        bound = {t.id for t in ast.walk(node) if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)}
        if (bound | {_statement_name(node)}) & wanted and not isinstance(node, (ast.Import, ast.ImportFrom)):
            needed.add(i)
            wanted |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    registered = {i for i, (node, source) in enumerate(statements[:index]) if source.startswith("register_fusion(")}
    imports = [source for node, source in statements if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(imports + [statements[i][1] for i in sorted(needed | registered)])


def _answered(student, original):
    """The student copy with every ``...`` a learner must replace answered as the solutions answer it."""
    statements = _solution_statements(original)
    known = {_statement_name(node) for node, _ in statements}
    filled = 0
    for cell in student.cells:
        if not delivery.is_exercise(cell) or "..." not in cell.source:
            continue
        lines = cell.source.splitlines()
        for node in reversed(ast.parse(cell.source).body):  # from the end, so line numbers stay valid
            name = _statement_name(node)
            if name in known and "..." in ast.get_source_segment(cell.source, node):
                lines[node.lineno - 1: node.end_lineno] = _answer(name, statements).splitlines()
                filled += 1
        cell.source = "\n".join(lines)
    return student, filled


@pytest.mark.slow
def test_student_copies_answered_by_the_solutions_pass_every_check(tmp_path, monkeypatch):
    """Each exercise of the student copies answered (its `...` replaced by the solution's answer), every copy run
    top to bottom: no check is left unsolved and every build, experiment and explain check answers right."""
    monkeypatch.setenv("FUSION_KIT_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    paths = runner.chapter_paths()
    copies = delivery.write_student_copies(paths, tmp_path / "handout")
    answered = 0
    for path, copy in zip(paths, copies):
        student, filled = _answered(nbformat.read(copy, as_version=4), nbformat.read(path, as_version=4))
        nbformat.write(student, copy)
        answered += filled
    assert answered >= 25, "every chapter has exercises to answer"
    runs = runner.run_chapters(copies, tmp_path / "executed", quick=True, progress=False)
    assert all(r.error is None for r in runs), [r.error for r in runs if r.error]
    for copy in copies:
        executed = nbformat.read(tmp_path / "executed" / copy.name, as_version=4)
        for cell in executed.cells:
            if delivery.is_exercise(cell) and "exercises.check_" in cell.source:
                text = _texts(cell)
                assert NOT_SOLVED not in text, f"{copy.name}: {cell.source[:80]!r} printed {text!r}"
                if cell.source.rstrip().splitlines()[-1].startswith("exercises.check_"):
                    verdict = text.rstrip().splitlines()[-1]  # the check's answer comes last
                    assert verdict.startswith(("Correct", "Right", "Entered")), f"{copy.name}: {text!r}"
