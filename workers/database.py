"""Database writes a worker retries through an outage (a restart, a failover) instead of losing the run.

A worker's progress, heartbeat and metrics writes are small and idempotent (an UPDATE filtered on
the run and its attempt), so repeating one after the connection dropped is safe. Without a retry the
first write during a database restart raised inside the pipeline, failed the attempt, and left the
run marked running with nobody to finish it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

Result = TypeVar("Result")

OUTAGE_RETRY_SECONDS = 300.0
"""How long a write keeps retrying; a longer outage fails the attempt, which is then resumable."""
FIRST_RETRY_DELAY_SECONDS = 0.5
LONGEST_RETRY_DELAY_SECONDS = 2.0


def retry_through_outage(write: Callable[[], Result], *, give_up_after: float = OUTAGE_RETRY_SECONDS) -> Result:
    """Call `write()`; while the database is unreachable, drop this thread's connection and call it again.

    Only connection errors are retried (`OperationalError`, `InterfaceError`); a write inside a
    transaction is not, since the transaction is gone with the connection.
    """
    deadline = time.monotonic() + give_up_after
    delay = FIRST_RETRY_DELAY_SECONDS
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError) as error:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            logger.warning("database write failed (%s); reconnecting in %.1f s", error, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, LONGEST_RETRY_DELAY_SECONDS)
