"""The preference loss against METHODS.md's closed forms, and the once-per-dataset reference pass."""

from __future__ import annotations

import math

import pytest
import torch

from pipelines.common.progress import RecordingProgress
from pipelines.common.store import RunStore
from pipelines.errors import RunCancelled
from pipelines.training import preference
from pipelines.training.config import PreferenceConfig
from pipelines.training.preference import preference_loss, run_preference

from .conftest import tiny_training

POLICY_CHOSEN = [-12.5, -30.25, -7.0, -55.5]
POLICY_REJECTED = [-14.0, -29.0, -9.5, -50.0]
REF_CHOSEN = [-13.0, -31.0, -7.25, -54.0]
REF_REJECTED = [-13.5, -28.5, -9.0, -51.5]


def closed_form(beta: float, loss_type: str) -> float:
    losses = []
    for pc, pr, rc, rr in zip(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, strict=True):
        # METHODS.md (SPIN): log(1 + exp(-(beta*log(p(y_real|x)/p_t(y_real|x)) - beta*log(p(y_gen|x)/p_t(y_gen|x)))))
        h = (pc - rc) - (pr - rr)
        if loss_type in ("sigmoid", "spin"):
            losses.append(math.log(1 + math.exp(-(beta * (pc - rc) - beta * (pr - rr)))))
        elif loss_type == "ipo":
            losses.append((h - 1 / (2 * beta)) ** 2)
        else:
            losses.append(max(0.0, 1 - beta * h))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("loss_type", ["sigmoid", "spin", "ipo", "hinge"])
@pytest.mark.parametrize("beta", [0.1, 0.5, 5.0])
def test_preference_loss_equals_the_closed_form(loss_type, beta):
    tensors = [
        torch.tensor(values, dtype=torch.float64)
        for values in (POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED)
    ]
    loss, chosen_rewards, rejected_rewards = preference_loss(*tensors, beta=beta, loss_type=loss_type)
    assert loss.item() == pytest.approx(closed_form(beta, loss_type), abs=1e-5)
    expected_chosen = [beta * (pc - rc) for pc, rc in zip(POLICY_CHOSEN, REF_CHOSEN, strict=True)]
    expected_rejected = [beta * (pr - rr) for pr, rr in zip(POLICY_REJECTED, REF_REJECTED, strict=True)]
    assert chosen_rewards.tolist() == pytest.approx(expected_chosen, abs=1e-9)
    assert rejected_rewards.tolist() == pytest.approx(expected_rejected, abs=1e-9)


def test_reference_log_probs_match_a_direct_computation(tiny_model_dir, preference_dataset, tmp_path):
    from transformers import AutoModelForCausalLM

    from pipelines.training.encoding import encode_preference_with_report
    from pipelines.training.examples import load_preference_pairs
    from pipelines.training.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    features, _report = encode_preference_with_report(
        tokenizer, load_preference_pairs(preference_dataset), max_length=64, max_prompt_length=48
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    chosen, rejected = preference.compute_reference_logps(
        model, features, batch_size=4, pad_token_id=tokenizer.pad_token_id, average=False
    )
    for feature, chosen_logp, rejected_logp in zip(features, chosen, rejected, strict=True):
        for reply_key, batched in (("chosen_ids", chosen_logp), ("rejected_ids", rejected_logp)):
            # One unpadded sequence at a time, full logits, summed log-probs of the reply tokens.
            ids = torch.tensor([feature["prompt_ids"] + feature[reply_key]])
            with torch.no_grad():
                log_probs = model(ids).logits[0, :-1].log_softmax(-1)
            targets = ids[0, 1:]
            start = len(feature["prompt_ids"]) - 1
            direct = log_probs[start:].gather(-1, targets[start:, None]).sum().item()
            assert batched == pytest.approx(direct, abs=1e-3)


def test_reference_pass_runs_once_across_an_interrupt_and_resume(tiny_model_dir, tmp_path, spin_dataset, monkeypatch):
    calls = []
    original = preference.compute_reference_logps

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return original(*args, **kwargs)

    monkeypatch.setattr(preference, "compute_reference_logps", counting)
    config = PreferenceConfig(loss="spin", beta=0.1, training=tiny_training(max_steps=4, adapter="full"))
    store = RunStore(tmp_path / "run")

    with pytest.raises(RunCancelled, match=r"stopped at step 2, checkpoint saved at .*checkpoint-2"):
        run_preference(config, tiny_model_dir, None, spin_dataset, store, RecordingProgress(cancel_after=2))
    assert store.exists("checkpoints", "checkpoint-2")

    resumed = RecordingProgress()
    result = run_preference(config, tiny_model_dir, None, spin_dataset, store, resumed)
    assert calls == [6]
    assert result.steps == 4
    assert [row["step"] for row in resumed.metric_rows if "loss" in row] == [3, 4]
    assert "reused" in " ".join(resumed.messages)
    assert store.exists("reference_logps.json")
    for row in resumed.metric_rows:
        if "loss" in row:
            assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "grad_norm"} <= set(
                row
            )


def test_a_separate_reference_model_is_used_when_given(tiny_model_dir, tmp_path, preference_dataset):
    from transformers import AutoModelForCausalLM

    other_reference = tmp_path / "other-reference"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1.5)
    model.save_pretrained(other_reference)

    same, different = RunStore(tmp_path / "same"), RunStore(tmp_path / "different")
    config = PreferenceConfig(training=tiny_training(max_steps=1))
    run_preference(config, tiny_model_dir, None, preference_dataset, same, RecordingProgress())
    run_preference(config, tiny_model_dir, other_reference, preference_dataset, different, RecordingProgress())
    assert same.read_json("reference_logps.json")["chosen"] != different.read_json("reference_logps.json")["chosen"]
