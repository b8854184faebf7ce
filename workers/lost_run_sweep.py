"""Lost-run detection as the workers' periodic job, so that pages that show runs only read.

`runs_mark_lost` (webapp/runs/services.py) updates runs and asks Redis about up to 100 of them. The
run pages used to call it on every poll of every viewer; now every worker runs a thread that calls
it every `REFINERY_LOST_RUN_CHECK_SECONDS`. A thread rather than RQ's work loop, because that loop
is blocked for hours by a training job (jobs run in the worker process) and for minutes by waiting
on an empty queue, and rather than a scheduled RQ job, because a job needs a free worker and all of
them may be busy exactly when one died. A lock in Redis, taken for a little under one interval,
makes the many workers of many hosts sweep once per interval between them, not once each. With no
worker running (or the setting at 0), `manage.py mark_lost_runs` from cron does the same sweep.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import connections
from redis import Redis

from webapp.runs import services

logger = logging.getLogger(__name__)

SWEEP_LOCK_KEY = "refinery:lost-run-sweep"
# The lock lapses a little before the interval ends, so the worker that took it finds it free at its
# next tick however its clock drifts against Redis's; sweeps are then 0.9 to about 2 intervals apart.
LOCK_SHARE_OF_INTERVAL = 0.9


def lost_run_check_seconds() -> float:
    """Seconds between sweeps; 0 or less turns the workers' sweep off."""
    return float(settings.REFINERY_LOST_RUN_CHECK_SECONDS)


def sweep_if_due(connection: Redis, holder: str, interval: float) -> int | None:
    """Mark lost runs unless some worker already swept in this interval; how many, or None when skipped."""
    lock_milliseconds = max(int(interval * 1000 * LOCK_SHARE_OF_INTERVAL), 1)
    if not connection.set(SWEEP_LOCK_KEY, holder, nx=True, px=lock_milliseconds):
        return None
    return services.runs_mark_lost()


class LostRunSweeper(threading.Thread):
    """A daemon thread of one worker that sweeps every `interval` seconds until `stop()`."""

    def __init__(self, connection: Redis, holder: str, interval: float) -> None:
        super().__init__(name="refinery-lost-run-sweep", daemon=True)
        self.connection = connection
        self.holder = holder
        self.interval = interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                marked = sweep_if_due(self.connection, self.holder, self.interval)
                if marked:
                    logger.warning("worker %s marked %d run(s) lost", self.holder, marked)
            except Exception as error:  # Redis or the database away: the next interval tries again
                logger.warning("worker %s could not look for lost runs: %r", self.holder, error)
            finally:
                # This thread's own connection: closed, so a database restart between sweeps costs nothing.
                connections.close_all()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        self.join(timeout=timeout)
