"""Where llmdeploy looks for each engine's API: one pure function of (environment, euid).

The engines and ``llmdeploy doctor`` both call these (test_doctor.py checks that doctor reports
the same addresses), so the two can no longer drift apart.
"""

from __future__ import annotations

import pytest

from llmdeploy.engines.addresses import (
    ApiAddress,
    configured_podman_address,
    docker_address,
    podman_addresses,
)


@pytest.mark.parametrize(
    ("env", "euid", "urls"),
    [
        ({}, 0, ["unix:///run/podman/podman.sock"]),
        # root with a login session: the rootful socket first, then the runtime dir's
        (
            {"XDG_RUNTIME_DIR": "/run/user/0"},
            0,
            ["unix:///run/podman/podman.sock", "unix:///run/user/0/podman/podman.sock"],
        ),
        ({"XDG_RUNTIME_DIR": "/run/user/1000/"}, 1000, ["unix:///run/user/1000/podman/podman.sock"]),
        # rootless without XDG_RUNTIME_DIR (su, sudo -u): where Podman itself puts it
        ({}, 1000, ["unix:///run/user/1000/podman/podman.sock"]),
        ({"XDG_RUNTIME_DIR": ""}, 1001, ["unix:///run/user/1001/podman/podman.sock"]),
    ],
)
def test_default_podman_sockets_per_user(env: dict[str, str], euid: int, urls: list[str]) -> None:
    addresses = podman_addresses(env, euid)
    assert [a.url for a in addresses] == urls
    assert not any(a.configured for a in addresses)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLMDEPLOY_PODMAN_SOCKET": "/srv/p.sock"}, ApiAddress("unix:///srv/p.sock", "LLMDEPLOY_PODMAN_SOCKET")),
        (
            {"LLMDEPLOY_PODMAN_SOCKET": "unix:///srv/p.sock", "CONTAINER_HOST": "unix:///other.sock"},
            ApiAddress("unix:///srv/p.sock", "LLMDEPLOY_PODMAN_SOCKET"),
        ),
        ({"CONTAINER_HOST": "tcp://10.0.0.5:8888"}, ApiAddress("tcp://10.0.0.5:8888", "CONTAINER_HOST")),
        ({"CONTAINER_HOST": "ssh://core@host/run/podman/podman.sock"}, ApiAddress("ssh://core@host/run/podman/podman.sock", "CONTAINER_HOST")),
    ],
)
def test_a_configured_podman_address_is_the_only_one_tried(
    env: dict[str, str], expected: ApiAddress
) -> None:
    for euid in (0, 1000):
        assert podman_addresses({**env, "XDG_RUNTIME_DIR": "/run/user/1000"}, euid) == (expected,)
    assert configured_podman_address(env) == expected


def test_empty_variables_count_as_unset() -> None:
    assert configured_podman_address({"LLMDEPLOY_PODMAN_SOCKET": "", "CONTAINER_HOST": ""}) is None
    assert docker_address({"DOCKER_HOST": ""}) == ApiAddress("unix:///var/run/docker.sock")


def test_docker_address_is_docker_host_else_the_default_socket() -> None:
    assert docker_address({}) == ApiAddress("unix:///var/run/docker.sock")
    configured = docker_address({"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert configured == ApiAddress("tcp://127.0.0.1:2375", "DOCKER_HOST")
    assert configured.origin == " (from $DOCKER_HOST)" and configured.socket_path is None


def test_socket_path_of_a_unix_address() -> None:
    assert ApiAddress("unix:///run/podman/podman.sock").socket_path == "/run/podman/podman.sock"
    assert ApiAddress("tcp://h:1").socket_path is None
    assert ApiAddress("unix:///x.sock").origin == ""
