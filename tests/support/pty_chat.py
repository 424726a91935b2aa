"""Drive a command through a pseudo-terminal, as a person at a terminal would (standard library
only: ``pty.fork`` makes the child a session leader with the terminal as its controlling
terminal, so a ``\\x03`` written to it reaches the child as SIGINT, like Ctrl-C)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Sequence
from pathlib import Path

CTRL_C = "\x03"
CTRL_D = "\x04"


class PtySession:
    """A child process on a fresh pseudo-terminal; ``expect`` reads until a text appears."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path,
                 columns: int = 120) -> None:  # fmt: skip
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec the command on the terminal
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], list(argv), env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        self.output = ""  # everything read so far (the terminal echoes what is typed)
        self._mark = 0  # where the next expect starts looking
        self.status: int | None = None

    def _read(self, timeout_s: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal (it exited)
            data = b""
        if not data:
            return False
        self.output += data.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def expect(self, text: str, timeout_s: float = 60.0) -> str:
        """Read until ``text`` appears after the previous match; return what came between.
        AssertionError with the output's tail when it does not come in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.output.find(text, self._mark)
            if found >= 0:
                between = self.output[self._mark:found]
                self._mark = found + len(text)
                return between
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and not self.alive()):
                if self.output.find(text, self._mark) >= 0:
                    continue
                raise AssertionError(
                    f"{text!r} did not appear within {timeout_s} s; output so far:\n"
                    + self.output[-3000:]
                )

    def expect_output(self, timeout_s: float = 60.0) -> str:
        """Read until anything arrives after the previous match; return it."""
        deadline = time.monotonic() + timeout_s
        while len(self.output) <= self._mark:
            if time.monotonic() > deadline or (not self._read(0.2) and not self.alive()):
                raise AssertionError("no output came; output so far:\n" + self.output[-3000:])
        new, self._mark = self.output[self._mark:], len(self.output)
        return new

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def alive(self) -> bool:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status is None

    def wait(self, timeout_s: float = 30.0) -> int:
        """The child's exit status (reading its last output meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while self.alive():
            if time.monotonic() > deadline:
                raise AssertionError("the child did not exit; output:\n" + self.output[-3000:])
            self._read(0.1)
        while self._read(0.05):
            pass
        assert self.status is not None
        return self.status

    def close(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.wait(10)
        os.close(self.fd)
