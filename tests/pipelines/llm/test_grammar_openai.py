"""The OpenAI-compatible backend sends a JSON-schema grammar as `response_format` (a real local HTTP
server in a thread records every request), a regular expression unconstrained, and falls back when refused."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipelines.llm.grammar import Grammar, structured_output_mode
from pipelines.llm.openai_backend import OpenAIBackend
from pipelines.llm.types import SamplingParams

SCHEMA = {"type": "object", "properties": {"verdict": {"enum": ["A", "B"]}}, "required": ["verdict"]}


class RecordingServer(ThreadingHTTPServer):
    """Answers every chat completion with `{"verdict": "A"}`, or 400 to a `response_format` when told to."""

    def __init__(self, refuse_response_format: bool) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.refuse_response_format = refuse_response_format
        self.bodies: list[dict] = []


class RecordingHandler(BaseHTTPRequestHandler):
    server: RecordingServer

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if self.server.refuse_response_format and "response_format" in body:
            self._send(400, {"error": {"message": "response_format is not supported"}})
            return
        choices = [
            {"index": index, "message": {"role": "assistant", "content": '{"verdict": "A"}'}, "finish_reason": "stop"}
            for index in range(body.get("n", 1))
        ]
        self._send(200, {"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 4}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def _serve(refuse_response_format: bool = False):  # type: ignore[no-untyped-def]
    server = RecordingServer(refuse_response_format)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    backend = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", "judge", max_concurrency=2, retries=0)
    return server, backend


@pytest.fixture
def recording():
    server, backend = _serve()
    yield server, backend
    backend.close()
    server.shutdown()


@pytest.fixture
def refusing():
    server, backend = _serve(refuse_response_format=True)
    yield server, backend
    backend.close()
    server.shutdown()


CHAT = [[{"role": "user", "content": "Which is better?"}]]


def test_a_json_schema_grammar_goes_out_as_response_format(recording):
    server, backend = recording
    grammar = Grammar.json_schema(SCHEMA)
    drawn = backend.chat(CHAT, SamplingParams(temperature=0.0, max_tokens=8, grammar=grammar))
    assert json.loads(drawn[0][0].text) == {"verdict": "A"}
    assert server.bodies[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
    }
    assert structured_output_mode(backend, grammar).startswith("response_format json_schema")


def test_a_regular_expression_goes_out_unconstrained_and_the_mode_says_so(recording):
    server, backend = recording
    grammar = Grammar.regex("(A|B)")
    backend.chat(CHAT, SamplingParams(temperature=0.0, max_tokens=8, grammar=grammar))
    assert "response_format" not in server.bodies[0]
    assert structured_output_mode(backend, grammar).startswith(
        "unconstrained: an OpenAI-compatible server takes no regex"
    )


def test_a_server_that_refuses_response_format_is_asked_again_without_it(refusing):
    server, backend = refusing
    grammar = Grammar.json_schema(SCHEMA)
    params = SamplingParams(temperature=0.0, max_tokens=8, grammar=grammar)
    drawn = backend.chat(CHAT, params)
    assert drawn[0][0].text == '{"verdict": "A"}'
    assert ["response_format" in body for body in server.bodies] == [True, False]
    assert "rejected response_format" in structured_output_mode(backend, grammar)
    backend.chat(CHAT, params)  # later requests go out without it at once
    assert "response_format" not in server.bodies[2]
