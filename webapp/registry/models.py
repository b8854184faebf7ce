"""The model registry: base models and every checkpoint a run produced, with lineage."""

from __future__ import annotations

from django.db import models
from django.urls import reverse


class ModelEntry(models.Model):
    """A model a backend can load: a local directory, the bundled default, or a remote endpoint."""

    class Backend(models.TextChoices):
        TRANSFORMERS = "transformers", "transformers (local weights)"
        VLLM = "vllm", "vLLM (in-process, GPU)"
        OPENAI = "openai", "OpenAI-compatible server"

    class Source(models.TextChoices):
        EMBEDDED = "embedded", "Bundled default"
        LOCAL = "local", "Local path"
        ENDPOINT = "endpoint", "Remote endpoint"
        RUN = "run", "Produced by a run"

    class Task(models.TextChoices):
        GENERATION = "generation", "Text generation"
        REWARD = "reward", "Reward model (scores responses)"

    name = models.CharField(max_length=200, unique=True)
    task = models.CharField(max_length=20, choices=Task.choices, default=Task.GENERATION)
    backend = models.CharField(max_length=20, choices=Backend.choices, default=Backend.TRANSFORMERS)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.LOCAL)
    path = models.CharField(max_length=1000, blank=True, help_text="Directory with config and weights.")
    base_url = models.URLField(blank=True, help_text="For OpenAI-compatible servers, e.g. http://host:8000/v1")
    served_model_name = models.CharField(max_length=300, blank=True)
    api_key_env = models.CharField(
        max_length=100, blank=True, help_text="Name of the environment variable holding the API key (never the key)."
    )
    dtype = models.CharField(
        max_length=20,
        default="auto",
        help_text="auto: bfloat16 on a CPU with bfloat16 kernels where the model passes the KL check "
        "(pipelines/llm/cpu_dtype.py), else float32; the GPU's own choice on CUDA. Or float32, bfloat16, float16.",
    )
    parent = models.ForeignKey("self", null=True, blank=True, related_name="children", on_delete=models.SET_NULL)
    produced_by_run = models.ForeignKey(
        "runs.PipelineRun", null=True, blank=True, related_name="produced_models", on_delete=models.SET_NULL
    )
    trained_on = models.ForeignKey(
        "library.Artifact",
        null=True,
        blank=True,
        related_name="trained_models",
        on_delete=models.SET_NULL,
        help_text="The dataset this checkpoint was trained on.",
    )
    reward_model = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        related_name="policies_trained_against",
        on_delete=models.SET_NULL,
        help_text="RL only: the reward model this policy was trained against.",
    )
    training_config = models.JSONField(default=dict, blank=True, help_text="The training config that produced it.")
    parameter_count = models.BigIntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("registry:detail", args=[self.pk])

    def clean(self) -> None:
        """An endpoint edited in the admin passes the same policy as one registered on the page."""
        if self.source == self.Source.ENDPOINT or self.backend == self.Backend.OPENAI:
            from .services import endpoint_check

            endpoint_check(base_url=self.base_url, api_key_env=self.api_key_env)

    def backend_spec(self) -> dict[str, str]:
        """What `pipelines.llm.factory.build_backend` needs; resolved inside the worker."""
        return {
            "kind": self.backend,
            "source": self.source,
            "path": self.path,
            "base_url": self.base_url,
            "served_model_name": self.served_model_name or self.name,
            "api_key_env": self.api_key_env,
            "dtype": self.dtype,
        }
