"""The ``podman run`` / ``docker run`` command line equivalent to a RunSpec."""

from __future__ import annotations

import shlex

from llmdeploy.core.engine_traits import EngineTraits
from llmdeploy.core.run_spec import BuildRequest, RunSpec


class EnvRef(str):
    """A ``NAME=${HOST_VAR}`` argument: the shell expands it, so no secret is written out."""


class Positional(str):
    """The image (or build context): starts its own line in wrapped output."""


def run_argv(spec: RunSpec, traits: EngineTraits) -> list[str]:
    argv = [traits.cli, "run", "--detach", "--name", spec.name]
    if spec.network_mode:
        argv += ["--network", spec.network_mode]
    for key, value in sorted(spec.labels.items()):
        argv += ["--label", f"{key}={value}"]
    for port in spec.ports:
        suffix = "" if port.protocol == "tcp" else f"/{port.protocol}"
        host = f"[{port.host_ip}]" if ":" in port.host_ip else port.host_ip  # IPv6
        argv += ["--publish", f"{host}:{port.host_port}:{port.container_port}{suffix}"]
    for mount in spec.mounts:
        options = "ro" if mount.read_only else "rw"
        argv += ["--volume", f"{mount.source}:{mount.target}:{options}"]
    for cap in spec.cap_drop:
        argv += ["--cap-drop", cap]
    for cap in spec.cap_add:
        argv += ["--cap-add", cap]
    if spec.no_new_privileges:
        argv += ["--security-opt", "no-new-privileges"]
    if spec.label_disable:
        argv += ["--security-opt", "label=disable"]
    if spec.read_only_rootfs:
        argv.append("--read-only")
    if spec.user:
        argv += ["--user", spec.user]
    if spec.gpu is not None:
        argv += traits.gpu_cli_flags(spec.gpu)
    if spec.cpus is not None:
        argv += ["--cpus", f"{spec.cpus:g}"]
    if spec.memory:
        argv += ["--memory", spec.memory]
    if spec.shm_size:
        argv += ["--shm-size", spec.shm_size]
    if spec.ipc_mode:
        argv += ["--ipc", spec.ipc_mode]
    if spec.pids_limit is not None:
        argv += ["--pids-limit", str(spec.pids_limit)]
    for name, limit in sorted(spec.ulimits.items()):
        argv += ["--ulimit", f"{name}={limit}"]
    for key, value in sorted(spec.env.items()):
        argv += ["--env", f"{key}={value}"]
    for key, host_var in sorted(spec.secret_env.items()):
        # passed through from the environment: the value is never written out
        argv += ["--env", key if key == host_var else EnvRef(f"{key}=${{{host_var}}}")]
    if spec.entrypoint is not None:
        argv += ["--entrypoint", shlex.join(spec.entrypoint)]
    argv.append(Positional(spec.image))
    argv += list(spec.args)
    return argv


def build_argv(request: BuildRequest, traits: EngineTraits) -> list[str]:
    argv = [traits.cli, "build", "--tag", request.tag, "--file", request.containerfile]
    for key, value in sorted(request.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(request.labels.items()):
        argv += ["--label", f"{key}={value}"]
    argv.append(Positional(request.context_dir))
    return argv


def shell_word(token: str) -> str:
    if isinstance(token, EnvRef):
        return f'"{token}"'  # names are validated: double quotes expand only ${HOST_VAR}
    return shlex.quote(token)


def shell_line(
    argv: list[str], env: tuple[tuple[str, str], ...] = (), *, wrap: bool = False
) -> str:
    """``argv`` for a POSIX shell; ``wrap`` puts each option (and its value) on its own line."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env)
    words = [shell_word(token) for token in argv]
    if not wrap:
        line = " ".join(words)
    else:
        lines: list[list[str]] = [words[:2]]
        for token, word in zip(argv[2:], words[2:], strict=True):
            current = lines[-1]
            takes_value = len(current) == 1 and current[0].startswith("-")
            if token.startswith("-") or isinstance(token, Positional) or not takes_value:
                lines.append([word])
            else:
                current.append(word)
        line = " \\\n    ".join(" ".join(group) for group in lines)
    return f"{prefix} {line}" if prefix else line
