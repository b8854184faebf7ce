from __future__ import annotations

from django import forms

from .models import ModelEntry


class LocalModelForm(forms.Form):
    name = forms.CharField(max_length=200)
    path = forms.CharField(
        max_length=1000, help_text="Directory with config.json and weights, readable by the workers."
    )
    backend = forms.ChoiceField(
        choices=[(ModelEntry.Backend.TRANSFORMERS, "transformers"), (ModelEntry.Backend.VLLM, "vLLM")]
    )
    dtype = forms.ChoiceField(
        choices=[
            ("auto", "auto (bfloat16 where the CPU has its kernels and the model passes the KL check)"),
            ("float32", "float32"),
            ("bfloat16", "bfloat16"),
            ("float16", "float16"),
        ],
        initial="auto",
        help_text="On a CPU, auto measures the model's next-token KL from float32 to bfloat16 at load and keeps "
        "bfloat16 (faster) only at 0.01 nats or less; the run's summary says which it ran in.",
    )


class EndpointModelForm(forms.Form):
    name = forms.CharField(max_length=200)
    base_url = forms.URLField(
        assume_scheme="https",
        help_text="e.g. https://gpu-host:8000/v1. Checked against this site's endpoint policy: link-local and cloud "
        "metadata addresses are never allowed; loopback and private addresses only where the operator allows them.",
    )
    served_model_name = forms.CharField(max_length=300, help_text="The model name the server expects.")
    api_key_env = forms.CharField(
        max_length=100,
        required=False,
        help_text="Environment variable on the workers holding the key; only names the operator set aside for "
        "endpoint keys (by default starting with REFINERY_ENDPOINT_KEY_).",
    )
