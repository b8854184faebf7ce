from __future__ import annotations

from django import forms

from .models import ModelEntry


class LocalModelForm(forms.Form):
    name = forms.CharField(max_length=200)
    path = forms.CharField(max_length=1000, help_text="Directory with config.json and weights, readable by the workers.")
    backend = forms.ChoiceField(choices=[(ModelEntry.Backend.TRANSFORMERS, "transformers"), (ModelEntry.Backend.VLLM, "vLLM")])
    dtype = forms.ChoiceField(choices=[("float32", "float32"), ("bfloat16", "bfloat16"), ("float16", "float16")])


class EndpointModelForm(forms.Form):
    name = forms.CharField(max_length=200)
    base_url = forms.URLField(help_text="e.g. http://gpu-host:8000/v1")
    served_model_name = forms.CharField(max_length=300, help_text="The model name the server expects.")
    api_key_env = forms.CharField(max_length=100, required=False, help_text="Environment variable on the workers holding the key.")
