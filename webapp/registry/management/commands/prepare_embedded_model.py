"""Convert the bundled SmolLM2 GGUF to safetensors once and register it as the default model."""
from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.registry.services import model_ensure_embedded


class Command(BaseCommand):
    help = "Convert the bundled default model once (cached under MODEL_CACHE_DIR) and register it."

    def handle(self, *args, **options) -> None:
        from pipelines.llm.embedded import ensure_embedded_model

        started = time.monotonic()
        directory = ensure_embedded_model(settings.MODEL_CACHE_DIR)
        entry = model_ensure_embedded()
        self.stdout.write(f"{entry.name}: weights at {directory} ({time.monotonic() - started:.1f}s)")
