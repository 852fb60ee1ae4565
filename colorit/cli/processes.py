"""Worker processes of a `colorit colorize --workers N` batch."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import wait

from colorit.cli import one_line_warnings


def _exit_when_parent_dies(sentinel: int) -> None:
    wait([sentinel])  # ready when the parent process has ended, however it ended
    os._exit(1)


def start_worker() -> None:
    """Initializer of each worker process: print colorit's warnings on one line, and end with the
    parent. A parent killed outright (SIGKILL, the OOM killer) cannot shut its pool down, and the
    workers, each holding a model, would otherwise run on for minutes."""
    one_line_warnings()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_when_parent_dies, args=(parent.sentinel,), daemon=True).start()
