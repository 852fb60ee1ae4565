"""Ends the processes a program started when that program is killed outright (kill -9, the OOM killer),
which leaves it no time to end them itself.

`colorit colorize --ray` without an address starts a local Ray instance. Ray's processes notice a lost
driver, but two of them, its dashboard and runtime-environment agents, then spend a minute trying to
report it to Ray's control store, which died with the driver (issue 21: both lingered for over a
minute after kill -9). Reaper runs this file as a separate watcher process that outlives the driver:
the driver tells it which processes to end, and at the end of its input it ends those still running,
unless the driver said "done" (it shut them down itself). Needs psutil only: it is run by path, not
imported with colorit.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

import psutil

DONE = "done"


class Reaper:
    """The driver's side: starts the watcher and tells it what to end."""

    def __init__(self) -> None:
        # Its own session: a Ctrl-C at the terminal, or a kill of the driver's process group, must not
        # end the watcher before it has done its work.
        self._watcher = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, text=True, start_new_session=True
        )

    def watch_descendants(self) -> None:
        """Have every process this one has started so far (children and theirs) ended with it."""
        assert self._watcher.stdin is not None
        for process in psutil.Process().children(recursive=True):
            if process.pid != self._watcher.pid:
                try:
                    self._watcher.stdin.write(f"{process.pid} {process.create_time()}\n")
                except psutil.NoSuchProcess:
                    continue  # ended already
        self._watcher.stdin.flush()

    def release(self) -> None:
        """The processes were ended in order: the watcher leaves them alone and exits."""
        assert self._watcher.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # the watcher was ended from outside: nothing to tell
            self._watcher.stdin.write(f"{DONE}\n")
            self._watcher.stdin.close()
        self._watcher.wait()


def _end_when_input_ends() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched: list[tuple[int, float]] = []
    for line in sys.stdin:
        if line.strip() == DONE:
            return
        pid, created = line.split()
        watched.append((int(pid), float(created)))
    for pid, created in watched:
        try:
            process = psutil.Process(pid)
            if process.create_time() == created:  # the same process, not a later one given its pid
                process.kill()
        except psutil.Error:
            continue  # ended already


if __name__ == "__main__":
    _end_when_input_ends()
