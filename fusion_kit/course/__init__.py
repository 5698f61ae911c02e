"""The course around the library: run the chapters, hand them out, and the ``fusion-kit`` command.

- ``runner``: execute the chapters headless with papermill, timings and a summary.
- ``delivery``: the static book, student copies without solutions, JupyterLab for a workshop.
- ``cli``: the ``fusion-kit`` command line on top of both.

Dependencies point one way: runner <- delivery <- cli.

Imports from fusion_kit: anything below it (the demo trains models); nothing imports it.
"""
from .cli import main
from .runner import CHAPTERS, ROOT, ChapterRun, chapter_paths, report, run_chapters

__all__ = ["CHAPTERS", "ROOT", "ChapterRun", "chapter_paths", "main", "report", "run_chapters"]
