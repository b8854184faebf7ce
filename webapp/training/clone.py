"""Clone and edit for training runs: the config's training settings back in the form, every one explicit.

The form's own fields take their values by name (`RunClone` in kinds.py); the settings the form has
no field for go into "extra settings" as JSON, so the clone trains exactly as the run did even if
the preset it named has changed since.
"""

from __future__ import annotations

import json
from typing import Any

from .forms import TRAINING_FIELDS

# Set by a field of their own: LoRA's rank (lora_r, which also sets alpha to twice the rank).
FORM_HANDLED = {*TRAINING_FIELDS, "lora"}


def training_form_data(config: dict[str, Any]) -> dict[str, Any]:
    """The fields the names cannot fill: LoRA, SFT's loss_on, and the rest of the training settings."""
    method = config["config"]
    training = method["training"]
    extra = {name: value for name, value in training.items() if name not in FORM_HANDLED}
    lora = training.get("lora") or {}
    data: dict[str, Any] = {"lora_r": lora.get("r")}
    if lora and lora.get("alpha") != 2 * lora.get("r", 0):
        extra["lora"] = lora  # not the form's rule (alpha = 2 x rank): kept as it was
    data["extra_settings"] = json.dumps(extra) if extra else ""
    if "completion_only_loss" in method:
        data["loss_on"] = "reply" if method["completion_only_loss"] else "all"
    return data
