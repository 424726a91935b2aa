"""The one exception tree of llmdeploy; every user-facing failure is one of these.

Each class carries an exit code and an optional hint (one line saying how to fix it).
The CLI prints ``message`` and ``hint`` and exits with ``exit_code``; it shows a
traceback only with ``--debug`` / ``LLMDEPLOY_DEBUG=1``.

    LlmdeployError                      exit 1
    ├── UsageError                      exit 2   a bad command-line option value or combination
    ├── ProfileError                    exit 3   bad or missing profile (names file and field)
    ├── RenderError                     exit 3   a template or renderer could not produce a file
    ├── ModelError                      exit 4   model reference cannot be resolved / stored
    ├── EngineError                     exit 5   container engine failures
    │   ├── EngineUnavailableError               engine not installed or not running
    │   ├── ImageError                           image missing, pull or build failed
    │   │   └── ImageBuildError         exit 11  the image build itself failed (build log tail)
    │   ├── PortInUseError                       host port already taken
    │   └── NameConflictError                    a container not ours holds the name
    ├── DeploymentError                 exit 6   lifecycle failures
    │   ├── ContainerExitedError                 container died during start (exit code + log tail)
    │   ├── HealthTimeoutError                   never became healthy (log tail + what was polled)
    │   └── DeploymentNotFoundError              no such running deployment
    ├── EndpointError                   exit 7   an inference endpoint answered badly or not at all
    ├── BenchError                      exit 8   benchmark configuration or run failure
    │   └── GateFailedError             exit 9   a --fail-on threshold was crossed
    ├── PlanError                       exit 10  the deployment does not fit its memory target
    ├── RegistryError                   exit 14  a registry (images or model artifacts) refused a
    │   │                                        request, or has no such tag
    │   ├── RegistryAuthError           exit 12  credentials missing, malformed or refused
    │   └── RegistryUnreachableError    exit 13  no connection, timeout, TLS/plain-HTTP mismatch
    └── InterruptedByUser               exit 130 Ctrl-C (after cleaning up)
"""

from __future__ import annotations

from collections.abc import Sequence


class LlmdeployError(Exception):
    """Base of every error llmdeploy reports to a user."""

    exit_code: int = 1

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log_tail: tuple[str, ...] = tuple(log_tail)

    def __str__(self) -> str:
        return self.message


class UsageError(LlmdeployError):
    """A bad option value or combination on the command line (the same code as click's)."""

    exit_code = 2


class ProfileError(LlmdeployError):
    exit_code = 3


class RenderError(LlmdeployError):
    exit_code = 3


class ModelError(LlmdeployError):
    exit_code = 4


class EngineError(LlmdeployError):
    exit_code = 5


class EngineUnavailableError(EngineError):
    pass


class ImageError(EngineError):
    pass


class ImageBuildError(ImageError):
    """The engine ran the build and a step failed (the log tail says which); exit 11, so a CI
    job tells a broken Containerfile from a registry problem."""

    exit_code = 11


class PortInUseError(EngineError):
    pass


class NameConflictError(EngineError):
    """The container name is taken by a container llmdeploy does not own for this deployment."""


class DeploymentError(LlmdeployError):
    exit_code = 6


class ContainerExitedError(DeploymentError):
    def __init__(
        self,
        message: str,
        *,
        container_exit_code: int | None,
        hint: str | None = None,
        log_tail: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint, log_tail=log_tail)
        self.container_exit_code = container_exit_code


class HealthTimeoutError(DeploymentError):
    pass


class DeploymentNotFoundError(DeploymentError):
    pass


class EndpointError(LlmdeployError):
    exit_code = 7


class BenchError(LlmdeployError):
    exit_code = 8


class GateFailedError(BenchError):
    exit_code = 9


class PlanError(LlmdeployError):
    """The memory planner's verdict: the model, context and concurrency do not fit."""

    exit_code = 10


class RegistryError(LlmdeployError):
    """An OCI registry answered an error (no such tag, a refused push or pull, not an OCI
    registry), for images (``build --push``, ``up`` pulling) and model artifacts alike."""

    exit_code = 14


class RegistryAuthError(RegistryError):
    """The registry wants credentials, or refused the ones given (401/403). The message names
    where the credentials came from (``--creds-env NAME``, an auth file), never their value."""

    exit_code = 12


class RegistryUnreachableError(RegistryError):
    """No answer from the registry: connection refused, DNS, timeout, or HTTPS spoken to a
    plain-HTTP registry (``--tls-verify=false`` allows plain HTTP)."""

    exit_code = 13


class InterruptedByUser(LlmdeployError):
    exit_code = 130
