"""``python -m fusion_kit.course``: the same as the ``fusion-kit`` command."""
from .cli import main

raise SystemExit(main())
