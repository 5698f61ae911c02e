"""Checks for the chapters' exercises: each says what is right, and gives a hint when it is not.

Every ``check_*`` function takes the learner's answer and returns a ``Feedback`` that
Jupyter prints and that is truthy only when the answer is right. An answer left as
``...`` or ``None`` is "not yet solved", never an error, so a student copy of a chapter
runs top to bottom before any exercise is done. One module per chapter.
"""
from .feedback import Feedback as Feedback
from .ch00 import *  # noqa: F401,F403
from .ch01 import *  # noqa: F401,F403
from .ch02 import *  # noqa: F401,F403
from .ch03 import *  # noqa: F401,F403
from .ch04 import *  # noqa: F401,F403
from .ch05 import *  # noqa: F401,F403
from .ch06 import *  # noqa: F401,F403
from .ch07 import *  # noqa: F401,F403
from .ch08 import *  # noqa: F401,F403
from .ch09 import *  # noqa: F401,F403
