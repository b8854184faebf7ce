"""Queue the demo generate run (demo prompts, bundled model) and optionally wait for it to finish."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.models import User
from webapp.generate import services as generate_services
from webapp.library.models import SeedPromptSet
from webapp.registry.services import model_ensure_embedded
from webapp.runs import services
from webapp.runs.models import PipelineRun

DEMO_PROMPT_SET = "Demo seed prompts"
DEMO_RUN_NAME = "Demo: answer the demo prompts"
# Long enough for the bundled model to end most answers itself (measured on 8 demo prompts: 0 of 8
# answers ended their sentence at 48 tokens, 5 at 256, 6 at 384, 7 at 512); each doubling about doubles
# the demo's CPU time, so the demo stops here. A longer answer is a DEMO_MAX_TOKENS away.
DEMO_MAX_TOKENS = 384
DEMO_SAMPLING = {"n": 1, "temperature": 0.7, "top_p": 0.95, "seed": 0}


class Command(BaseCommand):
    help = "Queue a generate run over the demo prompts with the bundled model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--wait", action="store_true", help="Wait until the run finishes.")
        parser.add_argument("--timeout", type=int, default=1800)
        parser.add_argument("--max-tokens", type=int, default=DEMO_MAX_TOKENS)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument("--again", action="store_true", help="Queue a new run even if the demo run already exists.")

    def handle(self, *args, **options) -> None:
        try:
            prompt_set = SeedPromptSet.objects.get(name=DEMO_PROMPT_SET)
        except SeedPromptSet.DoesNotExist as error:
            raise CommandError(
                f"No prompt set named “{DEMO_PROMPT_SET}”; run `manage.py load_demo_data` first."
            ) from error
        model = model_ensure_embedded()
        config = generate_services.generate_config_build(
            model=model,
            prompt_set=prompt_set,
            max_tokens=options["max_tokens"],
            batch_size=8,
            **DEMO_SAMPLING,
        )
        # A repeated demo.sh reuses the demo run (finished, or still on its way) instead of queueing another.
        candidates = (
            PipelineRun.objects.filter(kind="generate", name=DEMO_RUN_NAME)
            .exclude(status__in=(PipelineRun.Status.FAILED, PipelineRun.Status.CANCELLED, PipelineRun.Status.LOST))
            .order_by("-pk")
        )
        existing = next((run for run in candidates if run.config == config), None)
        if existing is not None and not options["again"]:
            run = existing
            url = f"{options['base_url'].rstrip('/')}{run.get_absolute_url()}"
            self.stdout.write(f"Demo run #{run.pk} already exists ({run.get_status_display()}): {url}")
        else:
            owner = User.objects.filter(is_superuser=True).order_by("pk").first()
            run = services.run_create(user=owner, kind="generate", config=config, name=DEMO_RUN_NAME)
            url = f"{options['base_url'].rstrip('/')}{run.get_absolute_url()}"
            self.stdout.write(f"Queued demo run #{run.pk}: {url}")
        if not options["wait"]:
            return
        deadline = time.monotonic() + options["timeout"]
        last = ""
        while time.monotonic() < deadline:
            services.runs_mark_lost()
            run.refresh_from_db()
            line = f"  {run.get_status_display()} · {run.stage} {run.progress_done}/{run.progress_total}"
            if line != last:
                self.stdout.write(line)
                last = line
            if not run.is_active:
                break
            time.sleep(2)
        if run.status != PipelineRun.Status.SUCCEEDED:
            raise CommandError(
                f"Demo run #{run.pk} ended as {run.get_status_display()}: {run.error or 'timed out'} ({url})"
            )
        self.stdout.write(self.style.SUCCESS(f"Demo run #{run.pk} succeeded: {run.summary} · {url}"))
