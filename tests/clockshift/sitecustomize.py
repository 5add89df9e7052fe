"""Moves carebot's clock in every Python process a test starts (servers, workers, the CLI).

`tests/conftest.py` puts this folder first on PYTHONPATH and sets CAREBOT_TEST_CLOCK_SHIFT (seconds)
when the suite runs at a pinned time of day (`--clock-at`); Python imports `sitecustomize` at start-up,
so a `carebot run` started by a test reads the same shifted time as the test itself. Test-only: nothing
outside tests/ imports it.
"""

import os

_shift = os.environ.get("CAREBOT_TEST_CLOCK_SHIFT")
if _shift:
    try:
        from bot.clock import shift_wall_clock
    except ImportError:  # a Python process that is not carebot's (a fake server): nothing to move
        pass
    else:
        shift_wall_clock(float(_shift))
