"""The CLI's consoles go quiet when their reader goes away (`up ... | head`): Rich's own
answer, SystemExit(1) from inside a write, stopped `up` between removing a replaced
container and starting its successor."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from llmdeploy.cli import console as console_module
from llmdeploy.cli.progress import RichReporter


def test_a_closed_stream_turns_the_display_off_and_the_phases_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console_module, "_stderr", None)
    closed = console_module.err()
    monkeypatch.setattr(closed, "_write_buffer", _broken)
    reporter = RichReporter(enabled=True)
    reporter.phase("replace", "Replacing the previous llmdeploy-x")
    reporter.detail("it does not answer")  # this write meets the closed pipe
    reporter.phase("start", "Starting llmdeploy-x")
    reporter.end_phase("fallback", "something else")
    reporter.finish(success=True)
    assert [r.name for r in reporter.records] == ["replace", "start"]  # no SystemExit
    assert closed.quiet


def _broken() -> None:
    raise BrokenPipeError(32, "Broken pipe")


def test_a_command_piped_into_head_runs_to_its_end() -> None:
    """A real pipe closed by its reader: the command finishes (exit 0) and says nothing
    about the pipe (no 'Exception ignored' from the interpreter's last flush)."""
    code = (
        "import sys; from llmdeploy.cli.console import err\n"
        "for i in range(2000): err().print(f'line {i}')\n"
        "open(sys.argv[1], 'w').write('reached the end')\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        marker = f"{folder}/done"
        shell = (f"{sys.executable} -c \"$CODE\" {marker} 2>&1 | head -c 10 >/dev/null; "
                 "echo ${PIPESTATUS[0]}")
        done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True,
                              env={"CODE": code, "PATH": "/usr/bin:/bin"}, timeout=60)
        assert done.stdout.strip() == "0", done.stdout + done.stderr
        assert Path(marker).read_text() == "reached the end"
