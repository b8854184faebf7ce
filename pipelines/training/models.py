"""Loading what a trainer trains: the tokenizer, the model (4-bit under QLoRA) and its LoRA adapter. Imports torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pipelines.errors import InvalidConfigError
from pipelines.training.arguments import TrainingArgs
from pipelines.training.runtime import Runtime


def load_tokenizer(model_dir: str | Path, prompt_format: str = "chat_template") -> Any:
    """The model's tokenizer, checked against how examples will be formatted.

    A base model without a chat template trains with `prompt_format` "raw_assistant" (ALMoST's
    `prompt\n\nAssistant: reply<eos>`), which needs an end-of-sequence token to end the reply.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if prompt_format == "chat_template" and tokenizer.chat_template is None:
        raise InvalidConfigError(
            f"{model_dir} has no chat template; set prompt_format to raw_assistant to train this base model on "
            "`prompt\n\nAssistant: reply<eos>` text (ALMoST's format)"
        )
    if prompt_format == "raw_assistant" and tokenizer.eos_token_id is None:
        raise InvalidConfigError(f"{model_dir} has no end-of-sequence token to end a raw_assistant reply with")
    return tokenizer


def disable_dropout(model: Any) -> int:
    """Set every dropout probability of `model` (its own and LoRA's) to 0; returns how many were set.

    TRL's DPOTrainer does this to the policy (`disable_dropout=True`): the reference log-probs are
    taken in eval mode, and a policy trained with dropout would be compared with them through noise.
    """
    changed = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            module.p = 0.0
            changed += 1
        # Attention dropout is often a float handed to scaled_dot_product_attention (Llama, Qwen, Mistral),
        # not a module; TRL's helper misses it, so it is set here too.
        for name in ("attention_dropout", "dropout"):
            value = getattr(module, name, None)
            if isinstance(value, float) and value > 0:
                setattr(module, name, 0.0)
                changed += 1
    return changed


def load_model(model_dir: str | Path, args: TrainingArgs, runtime: Runtime, *, reward_head: bool = False) -> Any:
    """The model to train in float32 master weights (mixed precision autocasts), 4-bit under QLoRA."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    kwargs: dict[str, Any] = {"dtype": torch.float32}
    if args.qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if runtime.dtype == "bfloat16" else torch.float16,
        )
    if reward_head:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config.use_cache = False
    return model


def apply_lora(model: Any, args: TrainingArgs, *, task_type: str = "CAUSAL_LM") -> Any:
    """Wrap `model` in a fresh LoRA adapter (a reward model's score head is trained in full)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if args.qlora:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    lora = args.lora
    target = lora.target_modules if isinstance(lora.target_modules, str) else list(lora.target_modules)
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=target,
        task_type=task_type,
    )
    # The adapter's A matrices are drawn from torch's global generator: seed it, or the weights depend on
    # whatever the process drew before (a resumed run, a warm worker's earlier job) and reruns differ.
    torch.manual_seed(args.seed)
    return get_peft_model(model, peft_config)


def parameter_counts(model: Any) -> tuple[int, int]:
    total = sum(parameter.numel() for parameter in model.parameters())
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    return total, trainable
