"""Model endpoints under the operator's policy: no worker secret as an API key, no internal addresses.

The web process refuses at registration (form errors), `ModelEntry.clean` refuses an admin edit, and
the worker checks again before it builds a backend and before every request, so an entry
changed behind the form's back or a host whose DNS changed is refused without a request being sent.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from pipelines.llm import endpoint_policy
from pipelines.llm.endpoint_policy import EndpointPolicy, EndpointRefusedError
from pipelines.llm.factory import build_backend
from pipelines.llm.types import SamplingParams
from webapp.registry.models import ModelEntry
from webapp.registry.services import model_register_endpoint

pytestmark = pytest.mark.django_db

REGISTER = "registry:register-endpoint"


def _register(client, **fields):
    data = {"name": "remote", "base_url": "http://127.0.0.1:8000/v1", "served_model_name": "m", "api_key_env": ""}
    data.update(fields)
    return client.post(reverse(REGISTER), data)


def _form_errors(response) -> dict[str, list[str]]:
    return dict(response.context["endpoint_form"].errors)


@pytest.mark.parametrize(
    "variable", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AWS_SECRET_ACCESS_KEY", "REFINERY_ENDPOINT_KEY_"]
)
def test_a_key_variable_outside_the_allowlist_is_refused_at_registration(researcher_client, variable):
    response = _register(researcher_client, api_key_env=variable)
    assert response.status_code == 400
    assert any("REFINERY_ENDPOINT_KEY_" in error for error in _form_errors(response)["api_key_env"])
    assert not ModelEntry.objects.filter(name="remote").exists()


def test_key_variables_with_the_prefix_or_listed_by_the_operator_are_accepted(researcher_client, settings):
    assert _register(researcher_client, name="prefixed", api_key_env="REFINERY_ENDPOINT_KEY_VLLM").status_code == 302
    assert _register(researcher_client, name="listed", api_key_env="OPENAI_API_KEY").status_code == 400
    settings.REFINERY_ENDPOINT_KEY_VARIABLES = ["OPENAI_API_KEY"]
    assert _register(researcher_client, name="listed", api_key_env="OPENAI_API_KEY").status_code == 302
    assert set(ModelEntry.objects.values_list("api_key_env", flat=True)) == {
        "REFINERY_ENDPOINT_KEY_VLLM",
        "OPENAI_API_KEY",
    }


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest/meta-data",  # AWS, GCP, Azure metadata
        "http://[fe80::1]:8000/v1",  # IPv6 link-local
        "http://[::ffff:169.254.169.254]/v1",  # the same address spelt as IPv4-mapped IPv6
        "http://metadata.google.internal/v1",
        "http://100.100.100.200/v1",  # Alibaba Cloud metadata
        "http://0.0.0.0:8000/v1",
    ],
)
def test_link_local_and_metadata_addresses_are_refused_even_when_everything_else_is_allowed(
    researcher_client, settings, base_url
):
    settings.REFINERY_ENDPOINT_ALLOW_LOOPBACK = True
    settings.REFINERY_ENDPOINT_ALLOW_PRIVATE = True
    response = _register(researcher_client, base_url=base_url)
    assert response.status_code == 400
    assert any("never allowed" in error for error in _form_errors(response)["base_url"]), _form_errors(response)
    assert not ModelEntry.objects.exists()


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"],
)
def test_loopback_only_where_the_operator_allows_it_checking_what_the_host_resolves_to(
    researcher_client, settings, base_url
):
    settings.REFINERY_ENDPOINT_ALLOW_LOOPBACK = False
    response = _register(researcher_client, base_url=base_url)
    assert response.status_code == 400
    assert any("loopback" in error for error in _form_errors(response)["base_url"]), _form_errors(response)
    settings.REFINERY_ENDPOINT_ALLOW_LOOPBACK = True
    assert _register(researcher_client, base_url=base_url).status_code == 302


def test_private_ranges_only_where_the_operator_allows_them(researcher_client, settings):
    settings.REFINERY_ENDPOINT_ALLOW_PRIVATE = False
    for address in ("10.1.2.3", "172.16.0.9", "192.168.1.20", "100.64.0.1", "[fd12::1]"):
        response = _register(researcher_client, base_url=f"http://{address}:8000/v1")
        assert response.status_code == 400 and "private" in " ".join(_form_errors(response)["base_url"]), address
    settings.REFINERY_ENDPOINT_ALLOW_PRIVATE = True
    assert _register(researcher_client, base_url="http://10.1.2.3:8000/v1").status_code == 302


def test_a_host_that_does_not_resolve_is_refused_with_its_name(researcher_client):
    response = _register(researcher_client, base_url="http://no-such-host.invalid:8000/v1")
    assert response.status_code == 400
    assert "no-such-host.invalid does not resolve" in " ".join(_form_errors(response)["base_url"])


def test_an_entry_edited_in_the_admin_passes_the_same_policy(admin_user, client):
    entry = model_register_endpoint(name="remote", base_url="http://127.0.0.1:8000/v1", served_model_name="m")
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:registry_modelentry_change", args=[entry.pk]),
        {
            "name": "remote",
            "task": "generation",
            "backend": "openai",
            "source": "endpoint",
            "base_url": "http://169.254.169.254/v1",
            "served_model_name": "m",
            "api_key_env": "SECRET_KEY",
            "dtype": "float32",
            "training_config": "{}",
            "metrics": "{}",
        },
    )
    assert response.status_code == 200  # the change form again, with errors
    errors = response.context["adminform"].form.errors
    assert "never allowed" in " ".join(errors["base_url"]) and "REFINERY_ENDPOINT_KEY_" in " ".join(
        errors["api_key_env"]
    )
    entry.refresh_from_db()
    assert entry.base_url == "http://127.0.0.1:8000/v1" and entry.api_key_env == ""
    with pytest.raises(ValidationError):
        ModelEntry(name="x", backend="openai", source="endpoint", base_url="http://169.254.169.254/v1").full_clean()


class _CountingOpenAIServer(BaseHTTPRequestHandler):
    """A minimal chat-completions server on 127.0.0.1 that counts requests and the keys it was sent."""

    requests: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).requests.append(self.headers.get("Authorization") or "")
        body = json.dumps({"choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_server():
    _CountingOpenAIServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CountingOpenAIServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def restore_policy():
    before = endpoint_policy.active_policy()
    yield
    endpoint_policy.configure(before)


def test_the_worker_refuses_a_secret_key_variable_and_internal_urls_before_sending_anything(
    tmp_path, monkeypatch, local_server, restore_policy
):
    """What a worker does with an entry changed after registration: the factory refuses it and sends nothing."""
    monkeypatch.setenv("SECRET_KEY", "the-site-secret")
    endpoint_policy.configure(EndpointPolicy(allow_loopback=True))
    spec = {"kind": "openai", "source": "endpoint", "base_url": local_server, "served_model_name": "m"}
    with pytest.raises(EndpointRefusedError, match="SECRET_KEY"):
        build_backend({**spec, "api_key_env": "SECRET_KEY"}, model_cache_dir=tmp_path)
    with pytest.raises(EndpointRefusedError, match="never allowed"):
        build_backend({**spec, "base_url": "http://169.254.169.254/v1"}, model_cache_dir=tmp_path)
    endpoint_policy.configure(EndpointPolicy(allow_loopback=False))
    with pytest.raises(EndpointRefusedError, match="loopback"):
        build_backend(spec, model_cache_dir=tmp_path)
    assert _CountingOpenAIServer.requests == []


def test_the_worker_checks_again_before_each_request_so_a_changed_resolution_is_refused(
    tmp_path, monkeypatch, local_server, restore_policy
):
    """A backend built while its host was allowed (kept warm by the worker) is refused once the host no longer passes."""
    monkeypatch.setenv("REFINERY_ENDPOINT_KEY_LOCAL", "sk-local")
    endpoint_policy.configure(EndpointPolicy(allow_loopback=True))
    spec = {
        "kind": "openai",
        "source": "endpoint",
        "base_url": local_server,
        "served_model_name": "m",
        "api_key_env": "REFINERY_ENDPOINT_KEY_LOCAL",
    }
    backend = build_backend(spec, model_cache_dir=tmp_path)
    try:
        params = SamplingParams(n=1, max_tokens=4, temperature=0.0, top_p=1.0, seed=1)
        assert backend.chat([[{"role": "user", "content": "hello"}]], params)[0][0].text == "hi"
        assert _CountingOpenAIServer.requests == ["Bearer sk-local"]
        # What a DNS change to a forbidden address looks like to the worker: the same host now fails the policy.
        endpoint_policy.configure(EndpointPolicy(allow_loopback=False))
        with pytest.raises(EndpointRefusedError, match="localhost resolves to 127.0.0.1"):
            backend.chat([[{"role": "user", "content": "hello again"}]], params)
        assert len(_CountingOpenAIServer.requests) == 1
    finally:
        backend.close()
