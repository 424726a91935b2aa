"""The answers of the fake engine API (fake_engine_api.py): each endpoint llmdeploy's adapters
call, in the shapes the real engines gave on this project's machines.

Captured with ``curl --unix-socket`` from Docker 20.10.24 (API 1.41) and Podman 4.3.1 (libpod,
through podman-py 5.8): status codes, error bodies (Docker ``{"message"}``, libpod ``{"cause",
"message", "response"}``; a taken name is 409 from Docker and 500 from Podman), chunked
JSON-lines streams for pull and build (libpod reports a failed pull inside a 200 stream), 8-byte
multiplexed frames for logs, inspect and list fields the SDKs and our adapters read.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any, Literal

Flavor = Literal["docker", "podman"]

DOCKER_API_VERSION = "1.41"
DOCKER_VERSION = "20.10.24+dfsg1"
PODMAN_VERSION = "4.3.1"
# what each engine said when a pull could not reach the registry (captured here)
DOCKER_PULL_ERROR = 'Get "http://localhost/v2/": dial tcp 127.0.0.1:80: connect: connection refused'
PODMAN_PULL_ERROR = (
    "initializing source docker://{ref}: pinging container registry localhost: "
    'Get "https://localhost/v2/": dial tcp 127.0.0.1:443: connect: connection refused'
)


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it; ``path`` has the version (and ``/libpod``) prefix cut."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # decoded JSON, the raw bytes of anything else, None when empty
    libpod: bool
    headers: dict[str, str] = field(default_factory=dict)
    raw_path: str = ""  # as sent, with the version prefix

    def registry_auth(self) -> dict[str, str] | None:
        """The decoded ``X-Registry-Auth`` header (base64url JSON), None when absent/empty."""
        import base64

        raw = self.headers.get("X-Registry-Auth", "")
        if not raw:
            return None
        return dict(json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))))

    def json_query(self, name: str) -> Any:
        return json.loads(self.query[name])


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str
    labels: dict[str, str]
    host_ports: tuple[tuple[str, int], ...]  # (host ip, host port)
    mounts: tuple[tuple[str, str, bool], ...]  # (source, target, read only)
    status: str = "created"
    started_at: str = "0001-01-01T00:00:00Z"
    log: list[tuple[int, bytes]] = field(default_factory=list)  # (1 stdout | 2 stderr, line)


@dataclass
class BuildOutcome:
    """What the next build answers: its log lines, then an error or success."""

    lines: tuple[str, ...] = ("STEP 1/2: FROM localhost/base:1\n", "STEP 2/2: LABEL a=b\n")
    error: str | None = None


class EngineState:
    """What the fake engine holds: images, containers, and the answers tests arrange."""

    def __init__(self, flavor: Flavor) -> None:
        self.flavor = flavor
        self.images: dict[str, str] = {}  # reference -> image id
        self.pullable: set[str] = set()  # references a pull finds in the "registry"
        self.containers: dict[str, FakeContainer] = {}
        self.build_outcome = BuildOutcome()
        # the "registry" behind push: credentials it accepts (None: anyone), what it holds
        self.registry_login: dict[str, str] | None = None
        self.pushed: dict[str, str] = {}  # reference -> image id
        # (method, path pattern) -> (status, message): answer that error instead, every time
        self.failures: dict[tuple[str, str], tuple[int, str]] = {}
        self._created = 0

    def add_image(self, ref: str) -> str:
        image_id = hashlib.sha256(ref.encode()).hexdigest()
        self.images[ref] = image_id
        return image_id

    def add_container(
        self, name: str, image: str, *, labels: dict[str, str] | None = None,
        running: bool = True, host_ports: tuple[tuple[str, int], ...] = (),
    ) -> FakeContainer:
        container = FakeContainer(
            id=hashlib.sha256(name.encode()).hexdigest(), name=name, image=image,
            labels=dict(labels or {}), host_ports=host_ports, mounts=(),
            status="running" if running else "created",
        )
        self.containers[container.id] = container
        return container

    def find(self, key: str) -> FakeContainer | None:
        for container in self.containers.values():
            if key in (container.id, container.name) or (
                len(key) >= 12 and container.id.startswith(key)
            ):
                return container
        return None

    def image_id(self, ref: str) -> str | None:
        if ref in self.images:
            return self.images[ref]
        for image_id in self.images.values():
            if ref in (image_id, f"sha256:{image_id}"):
                return image_id
        return None


class Reply:
    """One HTTP answer: JSON ``body``, a chunked ``stream`` or plain ``text``."""

    def __init__(self, status: int, body: Any = None, *, stream: list[bytes] | None = None,
                 text: str | None = None) -> None:
        self.status, self.body, self.stream, self.text = status, body, stream, text


def _error(api: EngineState, status: int, message: str, cause: str = "") -> Reply:
    if api.flavor == "docker":
        return Reply(status, {"message": message})
    return Reply(status, {"cause": cause or message, "message": message, "response": status})


def _lines(*items: dict[str, Any]) -> list[bytes]:
    return [json.dumps(item).encode() + b"\n" for item in items]


def route(api: EngineState, req: Recorded) -> Reply:
    path, method = req.path, req.method
    for (fail_method, pattern), (status, message) in api.failures.items():
        if method == fail_method and re.fullmatch(pattern, path):
            return _error(api, status, message)
    if path == "/_ping":
        return Reply(200, text="OK")
    if path == "/version":
        return Reply(200, _version(api.flavor))
    match = re.fullmatch(r"/images/(.+)/json", path)
    if match and method == "GET":
        return _image_inspect(api, match.group(1))
    if path == "/images/create" and method == "POST":  # Docker pull
        return _docker_pull(api, f"{req.query['fromImage']}:{req.query.get('tag') or 'latest'}")
    if path == "/images/pull" and method == "POST":  # libpod pull
        return _podman_pull(api, req.query["reference"])
    if path == "/build" and method == "POST":
        return _build(api, req)
    match = re.fullmatch(r"/images/(.+)/push", path)
    if match and method == "POST":
        name = match.group(1)
        return _push(api, req, f"{name}:{req.query['tag']}" if req.query.get("tag") else name)
    if path == "/containers/create" and method == "POST":
        return _create(api, req)
    if path == "/containers/json" and method == "GET":
        return _list(api, req)
    match = re.fullmatch(r"/containers/([^/]+)(/[a-z]+)?", path)
    if match:
        container = api.find(match.group(1))
        if container is None:
            return _no_such_container(api, match.group(1))
        action = (method, match.group(2) or "")
        if action == ("GET", "/json"):
            return Reply(200, _inspect(api, container))
        if action == ("POST", "/start"):
            return _start(api, container)
        if action == ("POST", "/stop"):
            if container.status != "running":
                return Reply(304)
            container.status = "exited"
            return Reply(204)
        if action == ("DELETE", ""):
            del api.containers[container.id]
            if api.flavor == "docker":
                return Reply(204)
            return Reply(200, [{"Id": container.id, "RawInput": match.group(1)}])
        if action == ("GET", "/logs"):
            return _logs(container, req)
    return _error(api, 404, f"page not found: {method} {path}")


def _version(flavor: Flavor) -> dict[str, Any]:
    if flavor == "docker":
        return {
            "Platform": {"Name": ""},
            "Version": DOCKER_VERSION,
            "ApiVersion": DOCKER_API_VERSION,
            "MinAPIVersion": "1.12",
            "Os": "linux",
            "Arch": "amd64",
        }
    return {
        "Platform": {"Name": "linux/amd64/debian-12"},
        "Components": [{"Name": "Podman Engine", "Version": PODMAN_VERSION,
                        "Details": {"APIVersion": PODMAN_VERSION, "MinAPIVersion": "4.0.0"}}],
        "Version": PODMAN_VERSION,
        "ApiVersion": DOCKER_API_VERSION,
        "MinAPIVersion": "1.24",
        "Os": "linux",
        "Arch": "amd64",
    }


def _image_inspect(api: EngineState, ref: str) -> Reply:
    image_id = api.image_id(ref)
    if image_id is None:
        if api.flavor == "docker":
            return _error(api, 404, f"no such image: {ref}: No such image: {ref}")
        return _error(api, 404, f"failed to find image {ref}: {ref}: image not known",
                      "image not known")
    tags = [name for name, known in api.images.items() if known == image_id]
    if api.flavor == "docker":
        return Reply(200, {"Id": f"sha256:{image_id}", "RepoTags": tags, "Config": {}})
    return Reply(200, {"Id": image_id, "RepoTags": tags, "Config": {}})


def _docker_pull(api: EngineState, ref: str) -> Reply:
    if ref not in api.pullable:
        return _error(api, 500, DOCKER_PULL_ERROR)
    api.add_image(ref)
    return Reply(200, stream=_lines(
        {"status": f"Pulling from {ref.rsplit(':', 1)[0]}", "id": ref.rsplit(":", 1)[1]},
        {"status": f"Status: Downloaded newer image for {ref}"},
    ))


def _podman_pull(api: EngineState, ref: str) -> Reply:
    # libpod answers 200 and reports a failed pull inside the stream
    trying = {"stream": f"Trying to pull {ref}...\n"}
    if ref not in api.pullable:
        return Reply(200, stream=_lines(trying, {"error": PODMAN_PULL_ERROR.format(ref=ref)}))
    image_id = api.add_image(ref)
    return Reply(200, stream=_lines(trying, {"images": [image_id], "id": image_id}))


# what each engine streamed when docker-registry 2.8 refused the credentials (captured here)
DOCKER_PUSH_AUTH_ERROR = "unauthorized: authentication required"
PODMAN_PUSH_AUTH_ERROR = (
    "trying to reuse blob sha256:c8ef at destination: checking whether a blob sha256:c8ef "
    "exists in {ref}: unauthorized: authentication required"
)
PUSHED_DIGEST = "sha256:" + "d5" * 32


def _push(api: EngineState, req: Recorded, ref: str) -> Reply:
    """Docker streams progress and ends with ``aux`` (Tag, Digest, Size); libpod 4.3 (with
    ``quiet=false``) streams ``stream`` lines and reports a refusal as an ``error`` line in a
    200 answer, and no digest."""
    image_id = api.image_id(ref)
    if image_id is None:
        return _error(api, 404, f"no such image: {ref}", "image not known")
    if api.registry_login is not None and req.registry_auth() != api.registry_login:
        if api.flavor == "docker":
            return Reply(200, stream=_lines(
                {"status": f"The push refers to repository [{ref.rsplit(':', 1)[0]}]"},
                {"errorDetail": {"message": DOCKER_PUSH_AUTH_ERROR},
                 "error": DOCKER_PUSH_AUTH_ERROR},
            ))
        return Reply(200, stream=_lines({"stream": "Getting image source signatures\n"},
                                        {"error": PODMAN_PUSH_AUTH_ERROR.format(ref=ref)}))
    api.pushed[ref] = image_id
    if api.flavor == "docker":
        tag = ref.rsplit(":", 1)[1]
        return Reply(200, stream=_lines(
            {"status": f"The push refers to repository [{ref.rsplit(':', 1)[0]}]"},
            {"status": f"{tag}: digest: {PUSHED_DIGEST} size: 529"},
            {"progressDetail": {}, "aux": {"Tag": tag, "Digest": PUSHED_DIGEST, "Size": 529}},
        ))
    return Reply(200, stream=_lines({"stream": "Getting image source signatures\n"},
                                    {"stream": "Writing manifest to image destination\n"},
                                    {"stream": "Storing signatures\n"}))


def _build(api: EngineState, req: Recorded) -> Reply:
    outcome = api.build_outcome
    with tarfile.open(fileobj=io.BytesIO(req.body)) as tar:  # the context must be a tar
        tar.getmember(req.query.get("dockerfile", "Dockerfile"))
    items: list[dict[str, Any]] = [{"stream": line} for line in outcome.lines]
    if outcome.error is not None:
        items.append({"errorDetail": {"message": outcome.error}, "error": outcome.error})
        return Reply(200, stream=_lines(*items))
    tag = req.query.get("t", "")
    image_id = api.add_image(tag or "built")
    if api.flavor == "docker":
        items += [{"aux": {"ID": f"sha256:{image_id}"}},
                  {"stream": f"Successfully built {image_id[:12]}\n"},
                  {"stream": f"Successfully tagged {tag}\n"}]
    else:
        items += [{"stream": f"Successfully tagged {tag}\n"}, {"stream": f"{image_id}\n"}]
    return Reply(200, stream=_lines(*items))


def _create(api: EngineState, req: Recorded) -> Reply:
    body = req.body
    if api.flavor == "docker":
        name, image = req.query.get("name", ""), body["Image"]
        host = body.get("HostConfig") or {}
        ports = tuple(
            (binding.get("HostIp", ""), int(binding["HostPort"]))
            for bindings in (host.get("PortBindings") or {}).values()
            for binding in bindings
        )
        mounts = tuple((m["Source"], m["Target"], bool(m.get("ReadOnly")))
                       for m in host.get("Mounts") or [])
    else:
        name, image = body.get("name", ""), body["image"]
        ports = tuple((p.get("host_ip", ""), int(p["host_port"]))
                      for p in body.get("portmappings") or [])
        mounts = tuple((m["source"], m["destination"], "ro" in (m.get("options") or []))
                       for m in body.get("mounts") or [])
    if api.image_id(image) is None:
        if api.flavor == "docker":
            return _error(api, 404, f"No such image: {image}")
        return _error(api, 404, f"{image}: image not known", "image not known")
    holder = api.find(name) if name else None
    if holder is not None:
        if api.flavor == "docker":
            return _error(api, 409, f'Conflict. The container name "/{name}" is already in use '
                          f'by container "{holder.id}". You have to remove (or rename) that '
                          "container to be able to reuse that name.")
        return _error(api, 500, f'creating container storage: the container name "{name}" is '
                      f"already in use by {holder.id}. You have to remove that container to be "
                      "able to reuse that name: that name is already in use",
                      "that name is already in use")
    labels = dict((body.get("Labels") if api.flavor == "docker" else body.get("labels")) or {})
    container = FakeContainer(
        id=hashlib.sha256(f"{name}{api._created}".encode()).hexdigest(),
        name=name, image=image, labels=labels, host_ports=ports, mounts=mounts,
        log=[(1, b"hello\n"), (2, b"err\n"), (1, b"partial")],
    )
    api._created += 1
    api.containers[container.id] = container
    return Reply(201, {"Id": container.id, "Warnings": []})


def _start(api: EngineState, container: FakeContainer) -> Reply:
    if container.status == "running":
        return Reply(304)
    for other in api.containers.values():
        taken = set(other.host_ports) & set(container.host_ports)
        if other.status == "running" and other is not container and taken:
            ip, port = sorted(taken)[0]
            if api.flavor == "docker":
                return _error(api, 500, "driver failed programming external connectivity on "
                              f"endpoint {container.name} (0123abcd): Bind for {ip}:{port} "
                              "failed: port is already allocated")
            return _error(api, 500, f"cannot listen on the TCP port: listen tcp4 {ip}:{port}: "
                          "bind: address already in use", "address already in use")
    container.status = "running"
    container.started_at = "2026-11-29T22:34:14.13936503Z"
    return Reply(204)


def _inspect(api: EngineState, container: FakeContainer) -> dict[str, Any]:
    state = {
        "Status": container.status,
        "Running": container.status == "running",
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 4242 if container.status == "running" else 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": container.started_at,
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    image_id = api.image_id(container.image) or ""
    mounts = [
        {"Type": "bind", "Source": source, "Destination": target, "Mode": "",
         "RW": not read_only, "Propagation": "rprivate"}
        for source, target, read_only in container.mounts
    ]
    config = {"Image": container.image, "Labels": dict(container.labels), "Tty": False}
    if api.flavor == "docker":
        return {"Id": container.id, "Name": f"/{container.name}", "State": state,
                "Image": f"sha256:{image_id}", "Config": config, "Mounts": mounts}
    for mount in mounts:
        mount.update({"Driver": "", "Options": ["rbind"]})
    return {"Id": container.id, "Name": container.name,
            "State": {"OciVersion": "1.0.2-dev", **state}, "Image": image_id,
            "ImageName": container.image, "Config": config, "Mounts": mounts}


def _list(api: EngineState, req: Recorded) -> Reply:
    wanted = req.json_query("filters").get("label", []) if "filters" in req.query else []
    listed = []
    for container in api.containers.values():
        if not _labels_match(container.labels, wanted):
            continue
        if container.status != "running" and req.query.get("all") not in ("1", "true", "True"):
            continue
        if api.flavor == "docker":
            listed.append({"Id": container.id, "Names": [f"/{container.name}"],
                           "Image": container.image, "Labels": container.labels,
                           "State": container.status, "Status": ""})
        else:
            listed.append({"Id": container.id, "Names": [container.name],
                           "Image": container.image, "Labels": container.labels,
                           "State": container.status, "Status": "", "AutoRemove": False})
    return Reply(200, listed)


def _labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    for condition in wanted:
        key, has_value, value = condition.partition("=")
        if key not in labels or (has_value and labels[key] != value):
            return False
    return True


def _logs(container: FakeContainer, req: Recorded) -> Reply:
    tail = req.query.get("tail", "all")
    entries = container.log if tail == "all" else container.log[-int(tail):]
    frames = [bytes([stream, 0, 0, 0]) + len(line).to_bytes(4, "big") + line
              for stream, line in entries]
    return Reply(200, stream=frames)


def _no_such_container(api: EngineState, key: str) -> Reply:
    if api.flavor == "docker":
        return _error(api, 404, f"No such container: {key}")
    return _error(api, 404, f'no container with name or ID "{key}" found: no such container',
                  "no such container")
