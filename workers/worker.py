"""The RQ worker class Refinery runs: jobs execute in the worker process so loaded models stay warm.

RQ's default worker forks a fresh work horse per job, which throws away a model loaded by the
previous job. Generation and training jobs are dominated by model loading on small jobs, so the
worker runs jobs in-process (RQ's `SimpleWorker`) and the backend cache in `pipelines.llm.factory`
keeps loaded models between jobs, keyed by model and dtype, least recently used first out when
they would exceed `REFINERY_BACKEND_CACHE_BYTES` (40% of RAM by default). A second job on a warm
model starts generating at once; its run page shows `model_cache_hit` and `model_load_seconds`.
A crash of the process loses no finished work: pipelines write each batch atomically and the run
is detected as lost (webapp/runs/services.py `runs_mark_lost`).

Liveness in Redis: RQ's SimpleWorker registers itself and the job's started-registry entry once, for
the job's whole timeout (days for a training job), so a SIGKILLed worker would look alive for days.
This worker instead keeps both on a short lease (`liveness_ttl_seconds`, the run heartbeat's stale
limit) and renews it from a thread of its own that only talks to Redis. So while the process lives,
RQ says so even when its database writes are blocked (a long SQLite import); a few seconds after it
dies, its registration and the job's entry expire, and the site may declare the run lost.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import worker_registration
from rq.job import Job
from rq.queue import Queue
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

logger = logging.getLogger(__name__)


def liveness_ttl_seconds() -> int:
    """How long the worker's registration and its job's started entry live without a renewal."""
    return max(int(settings.RUN_HEARTBEAT_STALE_SECONDS), 6)


class ModelCachingWorker(SimpleWorker):
    """SimpleWorker whose Redis registration and started job stay on a short, renewed lease."""

    def get_heartbeat_ttl(self, job: Job) -> int:
        return liveness_ttl_seconds()

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, first registering the worker again if Redis lost it (restarted empty, flushed).

        RQ registers a worker once, at birth: after a Redis restart it would keep taking jobs while
        missing from the dashboard's workers and from the lost-run check (tests/faults/test_redis_restart.py).
        """
        if not self.connection.sismember(self.redis_workers_keys, self.key):
            logger.warning("worker %s is not registered in Redis (restarted?); registering again", self.name)
            with self.connection.pipeline() as registration:
                registration.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
                worker_registration.register(self, registration)
                registration.expire(self.key, timeout or self.worker_ttl + 60)
                registration.execute()
        super().heartbeat(timeout, pipeline)

    def execute_job(self, job: Job, queue: Queue) -> None:
        stop = threading.Event()
        renewer = threading.Thread(
            target=self._renew_liveness, args=(job, stop), name=f"rq-liveness-{job.id}", daemon=True
        )
        # Registers the execution (and the started-registry entry) with our short TTL, then works.
        self.prepare_execution(job)
        renewer.start()
        try:
            self.perform_job(job, queue)
        finally:
            stop.set()
            renewer.join(timeout=10)
        self.set_state(WorkerStatus.IDLE)

    def _renew_liveness(self, job: Job, stop: threading.Event) -> None:
        """Renew the worker key, the execution and the started-registry entry: a third of the TTL apart."""
        ttl = liveness_ttl_seconds()
        while not stop.wait(ttl / 3):
            execution = self.execution
            if execution is None:
                return
            try:
                with self.connection.pipeline() as pipeline:
                    self.heartbeat(ttl, pipeline=pipeline)
                    execution.heartbeat(job.started_job_registry, ttl, pipeline=pipeline)
                    job.heartbeat(now(), ttl, pipeline=pipeline, xx=True)
                    registration_was_gone = pipeline.execute()[0] == 1
                if registration_was_gone:
                    # Redis lost the worker's hash (restarted without persistence): write it whole again,
                    # as RQ's own heartbeat does, so the worker shows with its current job.
                    with self.connection.pipeline() as pipeline:
                        pipeline.hset(self.key, mapping=self.serialize())
                        self.set_current_job_id(job.id, pipeline=pipeline)
                        pipeline.expire(self.key, ttl)
                        pipeline.execute()
            except RedisError as error:  # Redis restarting: try again on the next beat
                logger.warning("worker %s could not renew its liveness in Redis: %s", self.name, error)
