"""Generation through any OpenAI-compatible server (`vllm serve`, `transformers serve`, llama.cpp) by base URL."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from pipelines.errors import BackendUnavailableError, InvalidConfigError, PipelineError
from pipelines.llm.endpoint_policy import check_endpoint_url
from pipelines.llm.grammar import Grammar
from pipelines.llm.token_progress import TokenProgress, count_tokens
from pipelines.llm.types import Completion, Conversation, FinishReason, SamplingParams, TokenLogprobs

logger = logging.getLogger(__name__)

RETRIED_STATUS_CODES = {429, 502, 503, 504}
MAX_TOP_LOGPROBS = 20
"""The OpenAI API's limit on `top_logprobs` (vLLM's server default `max_logprobs` is the same)."""


class OpenAIBackend:
    """Sends one request per prompt (asking for all n samples), at most `max_concurrency` at a time.

    Many requests in flight keep a remote `vllm serve` busy: it batches whatever is in flight, so a
    client that waits for each answer before sending the next leaves the GPU mostly idle. Answers
    keep the order of the inputs. Servers that ignore `n` (transformers serve does) get further
    requests until each prompt has n samples; once a server is seen ignoring `n`, the n samples of
    a prompt go out as n concurrent one-sample requests. Request k of a prompt uses seed + k, so a
    seeded run does not draw the same sample n times and draws the same samples either way.

    A grammar (`SamplingParams.grammar`) that is a JSON schema goes out as `response_format`
    (`{"type": "json_schema", ...}`, which vLLM's and most OpenAI-compatible servers honour); a
    regular expression has no portable field, so that request goes out unconstrained and the step
    parses the reply as it would without a grammar. A server that rejects `response_format` gets the
    request again without it, and every later one too. `structured_output_mode` says which applies,
    for the run log.

    `token_progress` (see `pipelines.llm.token_progress`) hears a call's tokens as its requests return,
    in input order, each counted at its whole budget: a server streams nothing mid-request here.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 300.0,
        retries: int = 3,
        retry_backoff_seconds: float = 1.0,
    ) -> None:
        started = time.monotonic()
        if not base_url.startswith(("http://", "https://")):
            raise InvalidConfigError(f"base_url {base_url!r} must start with http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model
        self.max_concurrency = max(1, max_concurrency)
        self.retries = max(0, retries)
        self.retry_backoff_seconds = retry_backoff_seconds
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="openai-backend")
        self._closed = threading.Event()
        # None until a response tells: does the server answer `n` choices when asked for n > 1?
        self.server_honours_n: bool | None = None
        # None until a request with `response_format` tells: does the server accept it?
        self.server_accepts_response_format: bool | None = None
        self.token_progress: TokenProgress | None = None
        """Hears each call's tokens as its requests return (set by the loader that hands this backend out)."""
        self.load_seconds = time.monotonic() - started

    # -- LLMBackend -------------------------------------------------------------------------------

    def chat(self, conversations: Sequence[Conversation], params: SamplingParams) -> list[list[Completion]]:
        bodies = [{"messages": [dict(message) for message in conversation]} for conversation in conversations]
        return self._sample_all(bodies, "/chat/completions", params)

    def complete(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Completion]]:
        bodies = [{"prompt": prompt} for prompt in prompts]
        return self._sample_all(bodies, "/completions", params)

    def structured_output_mode(self, grammar: Grammar | None) -> str:
        """How a request with `grammar` is constrained here, in words for the run log."""
        if grammar is None:
            return "unconstrained"
        if grammar.kind != "json_schema":
            return (
                f"unconstrained: an OpenAI-compatible server takes no {grammar.kind} grammar, "
                "so the reply is parsed as without one"
            )
        if self.server_accepts_response_format is False:
            return f"unconstrained: the server at {self.base_url} rejected response_format, so the reply is parsed"
        return "response_format json_schema (the server constrains the reply)"

    def chat_next_token_logprobs(
        self, conversations: Sequence[Conversation], *, top_k: int = 20, always_include: Sequence[str] = ()
    ) -> list[TokenLogprobs]:
        """The server's `top_logprobs` for the first token of a one-token greedy answer, per conversation.

        Asks `/chat/completions` with `logprobs: true`, `top_logprobs: min(top_k, 20)`,
        `max_tokens: 1`, `temperature: 0` (AlpacaEval 2's weighted annotators ask the same). A server
        sees only its top k: `always_include` cannot widen it, and a text outside it is absent. A
        server that refuses the fields or answers without them (`transformers serve` does) is a
        configuration error naming the server: choose the parsed-text judge for it.
        """
        body = {
            "model": self.model,
            "n": 1,
            "temperature": 0.0,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": max(1, min(top_k, MAX_TOP_LOGPROBS)),
        }

        def ask(conversation: Conversation) -> TokenLogprobs:
            try:
                data = self._post("/chat/completions", {"messages": [dict(m) for m in conversation], **body})
            except InvalidConfigError as error:
                raise InvalidConfigError(
                    f"the server at {self.base_url} refused a request for log-probabilities ({error}); "
                    "judge with the parsed-text judge on this server"
                ) from error
            return next_token_logprobs_from_response(data, source=f"{self.base_url}/chat/completions")

        return list(self._pool.map(ask, conversations))

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._pool.shutdown(wait=True)
            self._client.close()

    # -- requests ---------------------------------------------------------------------------------

    def _sample_all(self, bodies: list[dict[str, Any]], path: str, params: SamplingParams) -> list[list[Completion]]:
        """Draw n samples for every prompt body, in rounds of concurrent requests, in input order."""
        results: list[list[Completion]] = [[] for _ in bodies]
        requests_sent = [0] * len(bodies)
        tokens = count_tokens(self.token_progress, len(bodies) * params.n * params.max_tokens)
        while True:
            # (prompt index, samples asked for, request number of that prompt)
            requests: list[tuple[int, int, int]] = []
            for index in range(len(bodies)):
                missing = params.n - len(results[index])
                if missing <= 0:
                    continue
                if self.server_honours_n is False:
                    requests += [(index, 1, requests_sent[index] + k) for k in range(missing)]
                    requests_sent[index] += missing
                else:
                    requests.append((index, missing, requests_sent[index]))
                    requests_sent[index] += 1
            if not requests:
                if tokens is not None:
                    tokens.end()
                return [completions[: params.n] for completions in results]
            answers = self._pool.map(
                lambda request: self._request(bodies[request[0]], path, params, n=request[1], number=request[2]),
                requests,
            )
            for (index, asked, _), drawn in zip(requests, answers, strict=True):
                if asked > 1:
                    self.server_honours_n = len(drawn) >= asked
                results[index].extend(drawn)
                if tokens is not None:
                    # Samples short of n are asked again in the next round and counted then.
                    tokens.part_finished(min(len(drawn), asked) * params.max_tokens)

    def _request(
        self, prompt_body: dict[str, Any], path: str, params: SamplingParams, *, n: int, number: int
    ) -> list[Completion]:
        body = {**prompt_body, **self._sampling_fields(params, n, number)}
        try:
            data = self._post(path, body)
        except InvalidConfigError:
            if "response_format" not in body:
                raise
            # A server without structured outputs: the unconstrained request, and the step's parser.
            self.server_accepts_response_format = False
            logger.warning("%s rejected response_format; sending requests without it", self.base_url)
            data = self._post(path, {key: value for key, value in body.items() if key != "response_format"})
        else:
            if "response_format" in body:
                self.server_accepts_response_format = True
        drawn = self._parse(data, chat=path == "/chat/completions", stop=params.stop)
        if not drawn:
            raise PipelineError(f"{self.base_url}{path} answered with no choices: {str(data)[:300]}")
        return drawn

    def _sampling_fields(self, params: SamplingParams, n: int, request_number: int) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            fields["seed"] = params.seed + request_number
        if params.stop:
            fields["stop"] = list(params.stop)
        grammar = params.grammar
        if grammar is not None and grammar.kind == "json_schema" and self.server_accepts_response_format is not False:
            fields["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": grammar.schema(), "strict": True},
            }
        return fields

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        check_endpoint_url(self.base_url)  # before every request: DNS may have changed since the backend was built
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_backoff_seconds * 2 ** (attempt - 1))
            try:
                response = self._client.post(path, json=body)
            except httpx.TransportError as error:
                last_problem = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in RETRIED_STATUS_CODES or response.status_code >= 500:
                last_problem = f"HTTP {response.status_code}: {response.text[:300]}"
                continue
            if response.status_code >= 400:
                raise InvalidConfigError(
                    f"{url} rejected the request (HTTP {response.status_code}): {response.text[:500]}; "
                    f"check the served model name ({self.model!r}) and the sampling settings"
                )
            return response.json()
        raise BackendUnavailableError(
            f"the model server at {url} did not answer after {self.retries + 1} attempts ({last_problem}); "
            "check that it is running and that the base URL is right"
        )

    def _parse(self, data: dict[str, Any], *, chat: bool, stop: tuple[str, ...]) -> list[Completion]:
        choices = sorted(data.get("choices") or [], key=lambda choice: choice.get("index", 0))
        usage = data.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        texts = [
            ((choice.get("message") or {}).get("content") or "") if chat else (choice.get("text") or "")
            for choice in choices
        ]
        texts = [_cut_at_stop(text, stop) for text in texts]
        token_counts = _split_tokens(int(usage.get("completion_tokens") or 0), texts)
        return [
            Completion(
                text=text,
                prompt_tokens=prompt_tokens,
                completion_tokens=tokens,
                finish_reason=_finish_reason(choice.get("finish_reason")),
                meta={"completion_tokens_estimated": len(choices) > 1},
            )
            for choice, text, tokens in zip(choices, texts, token_counts, strict=True)
        ]


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    # Servers differ on whether the stop string stays in the text; the interface says it does not.
    positions = [text.find(stop_string) for stop_string in stop if stop_string in text]
    return text[: min(positions)] if positions else text


def _finish_reason(reason: str | None) -> FinishReason:
    return "length" if reason == "length" else "stop"


def _split_tokens(total: int, texts: list[str]) -> list[int]:
    """Share a response's completion-token total among its choices, in proportion to text length.

    OpenAI-style usage reports one total per response; with one choice the count is exact.
    """
    if len(texts) <= 1:
        return [total] * len(texts)
    weights = [max(1, len(text)) for text in texts]
    shares = [total * weight // sum(weights) for weight in weights]
    for index in range(total - sum(shares)):
        shares[index % len(shares)] += 1
    return shares


def next_token_logprobs_from_response(data: dict[str, Any], *, source: str) -> TokenLogprobs:
    """The first position's `top_logprobs` of a chat completion, token text -> logprob (duplicates added).

    The OpenAI format: `choices[0].logprobs.content[0].top_logprobs` = [{"token", "logprob"}, ...].
    Anything else means the server does not give log-probabilities: a configuration error.
    """
    choices = data.get("choices") or []
    logprobs = (choices[0].get("logprobs") if choices else None) or {}
    content = logprobs.get("content") or []
    top = content[0].get("top_logprobs") if content and isinstance(content[0], dict) else None
    if not top:
        raise InvalidConfigError(
            f"{source} answered without log-probabilities (no choices[0].logprobs.content[0].top_logprobs): "
            "the server does not support them; judge with the parsed-text judge on this server"
        )
    reported: TokenLogprobs = {}
    for entry in top:
        text, value = str(entry.get("token", "")), float(entry.get("logprob", float("-inf")))
        if text in reported:
            high, low = max(reported[text], value), min(reported[text], value)
            value = high + math.log1p(math.exp(low - high)) if math.isfinite(low) else high
        reported[text] = value
    return reported
