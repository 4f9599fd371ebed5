"""How `mtrl` commands end: one line on stderr and an exit status, the same for `train` and `sweep`.

0 done, 2 bad input (the line names the bad value), 1 divergence or an unreadable checkpoint, 130 stopped by
a signal (resumable: the line says how to continue).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from mtrl.checkpoint import CheckpointError
from mtrl.training import Diverged, Interrupted

BAD_INPUT = (ValueError, FileExistsError, FileNotFoundError)


def run_command(command: Callable[[], object], *, on_interrupt: Callable[[Interrupted], str]) -> int:
    """Run `command` and map what it raises to an exit status and one line (an int it returns is the
    status; anything else means 0); `on_interrupt` says how the user continues a stopped run."""
    try:
        status = command()
        return status if isinstance(status, int) else 0
    except BAD_INPUT as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 2
    except Interrupted as stopped:
        print(f"mtrl: {stopped}; {on_interrupt(stopped)}", file=sys.stderr)
        return 130
    except (Diverged, CheckpointError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 1
