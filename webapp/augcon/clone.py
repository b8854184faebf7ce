"""Clone and edit for AugCon runs: every setting the form shows, explicit, from the run's config.

Filled in rather than left to the preset, so the clone makes the same run even if the preset it
named has changed since; the documents are the run's own positions.
"""

from __future__ import annotations

from typing import Any

from webapp.runs.clone import MISSING, config_value

from .forms import SCORER_SETTINGS


def augcon_form_data(config: dict[str, Any]) -> dict[str, Any]:
    """The scorer's settings, its warmup and QLoRA, the tokenizer and the documents by position."""
    augcon = config["augcon"]
    data: dict[str, Any] = {}
    for form_name, (target, _field, _help) in SCORER_SETTINGS.items():
        value = config_value(augcon["scorer"], target)
        if value is not MISSING:
            data[form_name] = value
    data["rouge_tokenizer"] = augcon.get("rouge_tokenizer", "")
    # Runs from before grammars existed were unconstrained.
    data["constrained_output"] = augcon.get("constrained_output", False)
    data["scorer_qlora"] = bool(augcon["scorer"].get("qlora"))
    data["scorer_warmup_steps"] = (augcon["scorer"].get("trainer_overrides") or {}).get("warmup_steps")
    data["documents"] = ", ".join(str(position) for position in config["document_positions"])
    data["max_documents"] = None
    return data
