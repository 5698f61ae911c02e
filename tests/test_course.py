import os

import nbformat
import pytest

from fusion_kit.course import cli, runner


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_chapters_are_found_in_order_and_filtered(tmp_path):
    for name in ("01_b.ipynb", "00_a.ipynb", "10_c.ipynb", "notes.ipynb"):
        _notebook(tmp_path / name, "1")
    names = [p.name for p in runner.chapter_paths(folder=tmp_path)]
    assert names == ["00_a.ipynb", "01_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in runner.chapter_paths(["1", "10"], folder=tmp_path)] == ["01_b.ipynb", "10_c.ipynb"]
    with pytest.raises(ValueError, match="no chapter numbered 07; chapters are 00, 01, 10"):
        runner.chapter_paths(["07"], folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="no chapters found"):
        runner.chapter_paths(folder=tmp_path / "empty")


def test_run_chapters_stops_at_the_failing_cell(tmp_path, monkeypatch):
    monkeypatch.delenv("FUSION_KIT_QUICK", raising=False)
    ok = _notebook(tmp_path / "00_ok.ipynb", "import os\nassert os.environ['FUSION_KIT_QUICK'] == '1'")
    bad = _notebook(tmp_path / "01_bad.ipynb", "raise ValueError('broken on purpose')")
    never = _notebook(tmp_path / "02_never.ipynb", "1")
    out = tmp_path / "out"
    runs = runner.run_chapters([ok, bad, never], out, quick=True, progress=False)
    assert [r.name for r in runs] == ["00_ok", "01_bad"]
    assert runs[0].error is None and (out / "00_ok.ipynb").is_file()
    assert "ValueError" in runs[1].error and "broken on purpose" in runs[1].error
    assert runner.report(runs, out) == 1
    assert "01_bad" in (out / "timings.md").read_text()


def test_info_prints_versions(capsys):
    assert cli.main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "torch" in printed and "device" in printed


def _one_line_error(capsys, argv) -> str:
    """Run the command line; it must fail with exit status 2 and one line on stderr, no traceback."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_user_errors_are_one_line_before_any_work(capsys, tmp_path):
    assert "unknown device 'tpu'" in _one_line_error(capsys, ["course", "--device", "tpu"])
    assert "no chapter numbered 99" in _one_line_error(capsys, ["course", "--only", "99"])
    assert "chapter numbers such as 03,05" in _one_line_error(capsys, ["course", "--only", ","])
    assert "chapter numbers such as 03,05" in _one_line_error(capsys, ["student", "--only", "three"])
    blocker = tmp_path / "file"
    blocker.write_text("")
    err = _one_line_error(capsys, ["course", "--out", str(blocker / "out"), "--only", "00"])
    assert "cannot write to the output folder" in err and "--out" in err
    assert not (tmp_path / "file" / "out").exists()


def test_read_only_output_folder_is_found_before_the_first_chapter(capsys, tmp_path, monkeypatch):
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)  # a read-only folder, even for root
    monkeypatch.setattr(cli, "run_chapters", lambda *a, **k: pytest.fail("a chapter ran"))
    err = _one_line_error(capsys, ["course", "--out", str(tmp_path / "locked")])
    assert "cannot write to the output folder" in err and "Permission denied" in err


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="no chapter numbered 99"):
        cli.main(["course", "--only", "99", "--debug"])


def test_summary_gathers_the_benchmark_and_the_timings(tmp_path, monkeypatch):
    monkeypatch.delenv("FUSION_KIT_RESULTS", raising=False)
    source = (
        "import os, pathlib\n"
        "results = pathlib.Path(os.environ['FUSION_KIT_RESULTS'])\n"
        "results.mkdir(parents=True, exist_ok=True)\n"
        "(results / 'benchmark.md').write_text('| model | bacc |\\n|---|---:|\\n| concat | 0.7 |\\n')"
    )
    chapter = _notebook(tmp_path / "08_bench.ipynb", source)
    out = tmp_path / "out"
    runs = runner.run_chapters([chapter], out, quick=True, progress=False)
    assert runner.report(runs, out) == 0
    summary = (out / "summary.md").read_text()
    assert "| concat | 0.7 |" in summary and "08_bench" in summary
    assert runs[0].peak_mib > 10  # a kernel takes tens of MiB at least


def test_run_chapters_leaves_the_environment_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSION_KIT_QUICK", "1")
    monkeypatch.delenv("FUSION_KIT_RESULTS", raising=False)
    chapter = _notebook(tmp_path / "00_env.ipynb", "import os\nassert os.environ['FUSION_KIT_QUICK'] == '0'")
    runs = runner.run_chapters([chapter], tmp_path / "out", quick=False, progress=False)
    assert runs[0].error is None
    assert os.environ["FUSION_KIT_QUICK"] == "1" and "FUSION_KIT_RESULTS" not in os.environ
