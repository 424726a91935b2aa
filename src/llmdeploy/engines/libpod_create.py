"""The body of libpod's ``POST /containers/create`` for PodmanEngine's create arguments,
rendered as podman-py renders it, without importing podman-py.

``up`` creates one container; importing podman-py for that (with ``requests`` and
``urllib3``) cost ~80-130 ms of each ``up`` on these machines. The create arguments
``PodmanEngine.create_kwargs`` makes are a small, fixed set of podman-py's keywords;
:func:`libpod_create_body` maps exactly those the way podman-py 5.8 does
(``CreateMixin._render_payload``, then ``api.prepare_body``'s filter of ``None`` and empty
values) and answers ``None`` for anything else, so an argument added later goes through
podman-py until it is rendered here. ``tests/unit/test_libpod_create.py`` compares the two
renderings for every built-in profile and each GPU, security and limit variant.

The keyword -> libpod SpecGenerator field mapping (podman-py's):

- ``image``, ``command``, ``name``, ``labels``, ``entrypoint``, ``user``, ``cap_add``,
  ``cap_drop``, ``no_new_privileges``, ``shm_size``: same names;
- ``environment`` -> ``env``; ``read_only`` -> ``read_only_filesystem``;
  ``security_opt`` -> ``selinux_opts``; ``group_add`` -> ``groups``;
- ``devices`` -> ``devices: [{"path": ...}]``;
- ``mounts`` (``type``/``source``/``target``/``read_only``) -> ``mounts: [{"type",
  "source", "destination", "options": ["ro"] or []}]``;
- ``ports`` (``"8080/tcp": (host_ip, host_port)``) -> ``portmappings: [{"container_port",
  "protocol", "host_ip", "host_port"}]``;
- ``ulimits`` (``Name``/``Soft``/``Hard``) -> ``r_limits: [{"type", "soft", "hard"}]``;
- ``cpu_period``/``cpu_quota``, ``mem_limit``, ``pids_limit`` -> ``resource_limits``'s
  ``cpu.period``/``cpu.quota``, ``memory.limit``, ``pids.limit``;
- ``ipc_mode`` -> ``ipcns: {"nsmode": ...}``; ``network_mode`` -> ``netns: {"nsmode": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

RENDERED = frozenset(
    {
        "image", "command", "name", "labels", "environment", "ports", "cap_drop", "cap_add",
        "read_only", "entrypoint", "user", "cpu_period", "cpu_quota", "mem_limit",
        "shm_size", "pids_limit", "ipc_mode", "mounts", "no_new_privileges", "security_opt",
        "ulimits", "devices", "group_add", "network_mode",
    }
)
_MOUNT_KEYS = frozenset({"type", "source", "target", "read_only"})


def libpod_create_body(kwargs: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON body podman-py would send for ``containers.create(**kwargs)``; None when
    ``kwargs`` holds a keyword or a value shape this module does not render."""
    if not set(kwargs) <= RENDERED or not _plain_shapes(kwargs):
        return None
    body: dict[str, Any] = {
        "image": kwargs.get("image"),
        "command": kwargs.get("command"),
        "name": kwargs.get("name"),
        "labels": kwargs.get("labels"),
        "env": kwargs.get("environment"),
        "entrypoint": kwargs.get("entrypoint"),
        "user": kwargs.get("user"),
        "cap_add": kwargs.get("cap_add"),
        "cap_drop": kwargs.get("cap_drop"),
        "read_only_filesystem": kwargs.get("read_only"),
        "no_new_privileges": kwargs.get("no_new_privileges"),
        "selinux_opts": kwargs.get("security_opt"),
        "groups": kwargs.get("group_add"),
        "shm_size": kwargs.get("shm_size"),
        "devices": [{"path": device} for device in kwargs.get("devices", [])],
        "mounts": [
            {
                "destination": m.get("target"),
                "options": ["ro"] if m.get("read_only") is True else [],
                "source": m.get("source"),
                "type": m.get("type"),
            }
            for m in kwargs.get("mounts", [])
        ],
        "portmappings": [
            _port(container, host) for container, host in kwargs.get("ports", {}).items()
        ],
        "r_limits": [
            {"type": u["Name"], "hard": u["Hard"], "soft": u["Soft"]}
            for u in kwargs.get("ulimits", [])
        ],
        "resource_limits": {
            "pids": {"limit": kwargs.get("pids_limit")},
            "cpu": {"period": kwargs.get("cpu_period"), "quota": kwargs.get("cpu_quota")},
            "memory": {"limit": kwargs.get("mem_limit")},
        },
    }
    if "ipc_mode" in kwargs:
        mode = kwargs["ipc_mode"]
        body["ipcns"] = mode if isinstance(mode, dict) else {"nsmode": mode}
    if "network_mode" in kwargs:  # plain modes only (host, none, bridge); _plain_shapes
        body["netns"] = {"nsmode": kwargs["network_mode"]}
    return _filtered(body)


def _plain_shapes(kwargs: Mapping[str, Any]) -> bool:
    """The value shapes rendered here: a list command, sizes already in bytes (podman-py
    parses strings such as ``"64m"`` itself), mounts with only the four keys above, ports
    as ``"PORT/PROTO": (host_ip, host_port)``."""
    if isinstance(kwargs.get("command"), str):
        return False
    if ":" in str(kwargs.get("network_mode", "")):  # ns:PATH, container:ID: podman-py's
        return False
    for key in ("shm_size", "mem_limit"):
        if kwargs.get(key) is not None and type(kwargs[key]) is not int:
            return False
    if any(not set(m) <= _MOUNT_KEYS for m in kwargs.get("mounts", [])):
        return False
    return all(
        isinstance(c, str) and "/" in c and isinstance(h, tuple) and len(h) == 2
        for c, h in kwargs.get("ports", {}).items()
    )


def _port(container: str, host: tuple[str, int | str]) -> dict[str, Any]:
    port, protocol = container.split("/")
    return {
        "container_port": int(port),
        "protocol": protocol,
        "host_ip": host[0],
        "host_port": int(host[1]),
    }


def _filtered(mapping: Mapping[str, Any], nested: bool = False) -> dict[str, Any]:
    """podman-py's ``_filter_values``: ``None`` values dropped; empty values dropped at the
    top level (``""`` too), empty lists and mappings below it; list items kept as they are
    (but ``None`` items)."""
    kept: dict[str, Any] = {}
    for key, value in mapping.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            proposal: Any = _filtered(value, nested=True)
        elif isinstance(value, Iterable) and not isinstance(value, str):
            proposal = [item for item in value if item is not None]
        else:
            proposal = value
        empty: tuple[Any, ...] = (None, [], {}) if nested else (None, "", [], {})
        if proposal not in empty:
            kept[key] = proposal
    return kept
