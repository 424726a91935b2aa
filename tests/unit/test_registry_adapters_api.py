"""Push through the real docker-py / podman-py against the fake engine APIs: what the
adapters send (TLS flag, credentials in X-Registry-Auth, never on a command line) and how
they read the engines' answers (a refusal inside a 200 stream is an error, exit 12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_engine_answers import PUSHED_DIGEST
from fake_engine_api import FakeEngineApi, serve

from llmdeploy.core.registry import RegistryAccess, RegistryCredentials
from llmdeploy.engines.docker_engine import DockerEngine
from llmdeploy.engines.podman_engine import PodmanEngine
from llmdeploy.engines.sdk_engine import SdkEngine
from llmdeploy.errors import RegistryAuthError

REF = "127.0.0.1:5000/llm/edge:1.2"
LOGIN = {"username": "ci-bot", "password": "tok-5ec2"}


@pytest.fixture(params=["podman", "docker"])
def api(request: pytest.FixtureRequest) -> Iterator[FakeEngineApi]:
    with serve(request.param) as fake:
        fake.add_image(REF)
        yield fake


@pytest.fixture
def engine(api: FakeEngineApi) -> Iterator[SdkEngine]:
    eng: SdkEngine = (PodmanEngine(socket_path=api.socket_path) if api.flavor == "podman"
                      else DockerEngine(base_url=api.url))
    api.forget()
    yield eng
    eng.close()


def test_push_sends_the_credentials_in_the_auth_header_only(api: FakeEngineApi,
                                                          engine: SdkEngine) -> None:
    api.registry_login = LOGIN
    creds = RegistryCredentials(LOGIN["username"], LOGIN["password"], "$REG")
    result = engine.push(REF, RegistryAccess(tls_verify=False, credentials=creds))
    push = api.last("POST", r"/images/.+/push")
    assert push.registry_auth() == LOGIN
    assert LOGIN["password"] not in str(push.query)
    assert api.pushed == {REF: api.images[REF]}
    if api.flavor == "podman":
        assert push.libpod and push.query["tlsVerify"] == "False"
        assert push.query["quiet"] == "False"  # errors come as stream lines then
    else:
        assert result.digest == PUSHED_DIGEST  # Docker's aux line carries the digest


def test_a_refusal_inside_a_200_stream_is_a_registry_auth_error(api: FakeEngineApi,
                                                               engine: SdkEngine) -> None:
    api.registry_login = LOGIN
    wrong = RegistryCredentials("ci-bot", "not-it")
    with pytest.raises(RegistryAuthError) as raised:
        engine.push(REF, RegistryAccess(tls_verify=False, credentials=wrong))
    assert raised.value.exit_code == 12
    assert "unauthorized" in raised.value.message and "not-it" not in raised.value.message
    assert REF not in api.pushed
    with pytest.raises(RegistryAuthError):
        engine.push(REF, RegistryAccess(tls_verify=False))  # anonymous: refused too
