"""Mark the runs that can no longer finish as lost, once: the workers' periodic sweep, for cron."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from webapp.runs import services


class Command(BaseCommand):
    help = (
        "Mark running runs whose worker is gone, and queued runs whose job is gone, as lost. Workers do this "
        "every REFINERY_LOST_RUN_CHECK_SECONDS; run it from cron where no worker runs or the setting is 0."
    )

    def handle(self, *args: object, **options: object) -> None:
        marked = services.runs_mark_lost()
        self.stdout.write(f"{marked} run(s) marked lost")
