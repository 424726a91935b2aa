"""``llmdeploy doctor``: what this host can run, and one line per problem saying how to fix it.

Pure checks over a ``HostProbe`` (the one seam to the machine), returning a typed ``DoctorReport``
that the CLI renders as a table or JSON. Exit code: 0 when the selected
engine path works, ``EXIT_NO_ENGINE`` (5) when no engine is usable.
"""

from llmdeploy.doctor.probe import CommandResult, HostProbe, ProbeError, SystemProbe
from llmdeploy.doctor.report import Check, DoctorReport, EngineReport, Status
from llmdeploy.doctor.run import EXIT_NO_ENGINE, run_doctor

__all__ = [
    "EXIT_NO_ENGINE",
    "Check",
    "CommandResult",
    "DoctorReport",
    "EngineReport",
    "HostProbe",
    "ProbeError",
    "Status",
    "SystemProbe",
    "run_doctor",
]
