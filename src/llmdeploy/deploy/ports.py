"""Is a host port free? Checked before the engine is asked, for a clear error."""

from __future__ import annotations

import errno
import socket
from typing import TYPE_CHECKING

from llmdeploy.core.labels import DeploymentLabels
from llmdeploy.errors import PortInUseError

if TYPE_CHECKING:
    from llmdeploy.engines.base import Engine


def port_is_free(host: str, port: int) -> bool:
    """False when something listens on (or holds a bind on) ``host:port``.

    Connections lingering in TIME_WAIT (the health polls of a deployment just taken down) do
    not make a port busy: engines bind it again without trouble.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind_host = host or "0.0.0.0"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError as exc:
            if exc.errno == errno.EACCES:
                return False
            if exc.errno != errno.EADDRINUSE:
                raise
            return not _listening(family, bind_host, port)
    return True


def _listening(family: socket.AddressFamily, host: str, port: int) -> bool:
    target = "127.0.0.1" if host == "0.0.0.0" else ("::1" if host == "::" else host)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect((target, port))
        except ConnectionRefusedError:
            return False  # bound only by TIME_WAIT leftovers: nothing accepts connections
        except OSError:
            return True
    return True


def port_in_use(
    engine: Engine, host: str, port: int, endpoint: str, *, otherwise: str
) -> PortInUseError:
    """The error for a taken ``host:port``: it names our running deployment that publishes
    ``endpoint`` there if one does, else hints ``otherwise``."""
    holders = [
        record.deployment
        for c in engine.list(DeploymentLabels.selector())
        if (record := c.deployment_labels) and record.endpoint == endpoint and c.running
    ]
    hint = (
        f"deployment {holders[0]!r} uses it: `llmdeploy down {holders[0]}`" if holders
        else otherwise
    )
    return PortInUseError(f"port {host}:{port} is already in use", hint=hint)
