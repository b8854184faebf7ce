"""Sampling responses from a policy and measuring their log-probabilities, in batches (imports torch).

Shared by the held-out evaluation (every algorithm) and PPO's rollouts, so the figures a user compares
across algorithms are measured one way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Sample:
    """One sampled response: its token ids (EOS included when it ended), its text and whether it ended."""

    prompt_ids: list[int]
    response_ids: list[int]
    text: str
    ended: bool


def sample_responses(
    model: Any,
    tokenizer: Any,
    prompt_ids: list[list[int]],
    *,
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    batch_size: int,
    seed: int | None = None,
) -> list[Sample]:
    """Sample one response per prompt (left-padded batches); a response stops at EOS or `max_new_tokens`.

    With `seed`, the draws come from that seed on a forked random state: the caller's own stream (the
    trainer's, which checkpoints save and resume) goes on as if this call had not happened.
    """
    device = next(model.parameters()).device
    seeded = contextlib.nullcontext() if seed is None else _seeded(seed, device)
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    was_training = model.training
    model.eval()
    samples: list[Sample] = []
    with seeded, torch.inference_mode():
        for start in range(0, len(prompt_ids), batch_size):
            batch = prompt_ids[start : start + batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch], device=device)
            attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch], device=device)
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=temperature,
                top_p=top_p,
                top_k=0,
                pad_token_id=pad,
                eos_token_id=eos,
            )
            for ids, row in zip(batch, output[:, width:].tolist(), strict=True):
                response, ended = _until_eos(row, eos)
                text = tokenizer.decode(response, skip_special_tokens=True)
                samples.append(Sample(prompt_ids=list(ids), response_ids=response, text=text, ended=ended))
    model.train(was_training)
    return samples



@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Draws from `seed` on a forked random state, the caller's own stream left as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield

def _until_eos(tokens: list[int], eos: int | None) -> tuple[list[int], bool]:
    if eos is not None and eos in tokens:
        return tokens[: tokens.index(eos) + 1], True
    return tokens, False


def response_log_probs(
    model: Any,
    samples: list[Sample],
    *,
    temperature: float,
    batch_size: int,
    pad_token_id: int,
) -> list[torch.Tensor]:
    """Per-token log-probabilities of each sample's response under `model` (logits divided by the temperature
    the samples were drawn at, as TRL's PPO and GRPO measure them), without gradients."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    result: list[torch.Tensor] = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            result.extend(token_log_probs(model, batch, temperature=temperature, pad_token_id=pad_token_id, device=device))
    model.train(was_training)
    return result


def token_log_probs(
    model: Any, batch: list[Sample], *, temperature: float, pad_token_id: int, device: Any
) -> list[torch.Tensor]:
    """The batch's response-token log-probabilities (a differentiable pass when grad is enabled).

    Sequences are right-padded prompt + response; position i predicts token i + 1.
    """
    logits, input_ids, offset = _response_logits(model, batch, temperature=temperature, pad_token_id=pad_token_id, device=device)
    targets = input_ids[:, offset + 1 :]
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    rows = []
    for row, sample in enumerate(batch):
        start = len(sample.prompt_ids) - 1 - offset
        rows.append(log_probs[row, start : start + len(sample.response_ids)])
    return rows


def _response_logits(
    model: Any, batch: list[Sample], *, temperature: float, pad_token_id: int, device: Any
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Logits (over the temperature) from the last position before the shortest prompt's response onwards,
    the right-padded input ids, and the position the logits start at.

    Why not every position: a prompt's own logits are never used, and at a 50k vocabulary they are most of
    the pass's memory and time (`logits_to_keep`).
    """
    sequences = [sample.prompt_ids + sample.response_ids for sample in batch]
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.tensor([s + [pad_token_id] * (width - len(s)) for s in sequences], device=device)
    attention = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
    offset = min(len(sample.prompt_ids) for sample in batch) - 1
    logits = model(input_ids=input_ids, attention_mask=attention, logits_to_keep=width - offset).logits
    return logits.float() / temperature, input_ids, offset


def response_kl(
    model: Any,
    reference: Any,
    samples: list[Sample],
    *,
    temperature: float,
    batch_size: int,
    pad_token_id: int,
) -> list[float]:
    """KL(pi || pi_ref) of each sample's response: the exact KL between the two next-token distributions,
    summed over the response's positions (never negative, unlike the sampled log-ratio on a few responses)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    result: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = samples[start : start + batch_size]
            mine = _response_distributions(model, batch, temperature=temperature, pad_token_id=pad_token_id, device=device)
            theirs = _response_distributions(
                reference, batch, temperature=temperature, pad_token_id=pad_token_id, device=device
            )
            for own, other in zip(mine, theirs, strict=True):
                result.append(float((own.exp() * (own - other)).sum()))
    model.train(was_training)
    return result


def _response_distributions(
    model: Any, batch: list[Sample], *, temperature: float, pad_token_id: int, device: Any
) -> list[torch.Tensor]:
    """Each sample's next-token log-distributions at its response positions ([response tokens, vocabulary])."""
    logits, _input_ids, offset = _response_logits(model, batch, temperature=temperature, pad_token_id=pad_token_id, device=device)
    rows = []
    for row, sample in enumerate(batch):
        start = len(sample.prompt_ids) - 1 - offset
        rows.append(torch.log_softmax(logits[row, start : start + len(sample.response_ids)], dim=-1))
    return rows
