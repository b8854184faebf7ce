"""The RQ worker class Refinery runs: jobs execute in the worker process so loaded models stay warm.

RQ's default worker forks a fresh work horse per job, which throws away a model loaded by the
previous job. Generation and training jobs are dominated by model loading on small jobs, so the
worker runs jobs in-process (RQ's `SimpleWorker`) and the backend cache in `pipelines.llm.factory`
keeps loaded models between jobs, keyed by model and dtype, least recently used first out when
they would exceed `REFINERY_BACKEND_CACHE_BYTES` (40% of RAM by default). A second job on a warm
model starts generating at once; its run page shows `model_cache_hit` and `model_load_seconds`.
A crash of the process loses no finished work: pipelines write each batch atomically and the run
is detected as lost (webapp/runs/services.py `runs_mark_lost`), which every worker looks for from a
thread of its own (workers/lost_run_sweep.py), one worker per interval.

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
import time

from django.conf import settings
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from rq import worker_registration
from rq.job import Job
from rq.queue import Queue
from rq.utils import now
from rq.worker import SimpleWorker, WorkerStatus

from pipelines.common.memory import release_freed_memory
from workers.lost_run_sweep import LostRunSweeper, lost_run_check_seconds

logger = logging.getLogger(__name__)


def liveness_ttl_seconds() -> int:
    """How long the worker's registration and its job's started entry live without a renewal."""
    return max(int(settings.RUN_HEARTBEAT_STALE_SECONDS), 6)


class ModelCachingWorker(SimpleWorker):
    """SimpleWorker whose Redis registration and started job stay on a short, renewed lease.

    It also sweeps for lost runs from a thread started with the work loop and stopped at its end.
    """

    _lost_run_sweeper: LostRunSweeper | None = None

    def bootstrap(self, *args: object, **kwargs: object) -> None:
        super().bootstrap(*args, **kwargs)
        interval = lost_run_check_seconds()
        if interval > 0:
            self._lost_run_sweeper = LostRunSweeper(self.connection, holder=self.name, interval=interval)
            self._lost_run_sweeper.start()

    def teardown(self) -> None:
        if self._lost_run_sweeper is not None:
            self._lost_run_sweeper.stop()
            self._lost_run_sweeper = None
        super().teardown()

    def get_heartbeat_ttl(self, job: Job) -> int:
        return liveness_ttl_seconds()

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, first registering the worker again if Redis lost it (restarted empty, flushed).

        RQ registers a worker once, at birth: after a Redis restart it would keep taking jobs while
        missing from the dashboard's workers and from the lost-run check (tests/faults/test_redis_restart.py).
        """
        self._register_again_if_lost(timeout or self.worker_ttl + 60)
        super().heartbeat(timeout, pipeline)

    def _register_again_if_lost(self, ttl: int, job: Job | None = None) -> bool:
        """Write the worker's registration whole again if Redis lost it; with `job`, its running job too.

        With a job running, Redis losing everything would otherwise leave the worker's `current_job`
        empty and the job missing from the started registry (RQ renews that entry only while it
        exists), and the lost-run check would declare a live run lost as soon as its database
        heartbeat is stale (writes blocked by an import or an outage).
        """
        registered = self.connection.sismember(self.redis_workers_keys, self.key)
        if registered and self.connection.exists(self.key):
            return False
        logger.warning("worker %s is not registered in Redis (restarted?); registering again", self.name)
        with self.connection.pipeline() as registration:
            registration.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            worker_registration.register(self, registration)
            execution = self.execution
            if job is not None and execution is not None:
                self.set_current_job_id(job.id, pipeline=registration)
                job.started_job_registry.add_execution(execution, ttl=ttl, pipeline=registration)
            registration.expire(self.key, ttl)
            registration.execute()
        return True

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
        except RedisConnectionError as error:
            # RQ's bookkeeping after the job (its result, the registries) met Redis down. RQ's work loop
            # would quit the worker on it; the run's outcome is already in the database, and the job's
            # started entry expires with its short lease, so the worker goes on to its next job instead.
            logger.warning("worker %s could not record job %s in Redis (%s); carrying on", self.name, job.id, error)
        finally:
            stop.set()
            renewer.join(timeout=10)
            # The job's models and tensors are gone; hand their heap back so an idle worker holds only
            # what it caches (pipelines/common/memory.py says how much this keeps resident otherwise).
            release_freed_memory()
        self._wait_for_redis()
        self.set_state(WorkerStatus.IDLE)

    def _wait_for_redis(self) -> None:
        """Return once Redis answers, retrying as RQ's dequeue loop does (1 s, doubling, at most 30 s apart).

        RQ's work loop talks to Redis right after a job (heartbeat, suspension check) outside any retry,
        and quits the worker on a connection error: a Redis restart as a job ended stopped the worker
        for good (tests/faults/test_redis_restart.py).
        """
        delay = 1.0
        while True:
            try:
                self.connection.ping()
                return
            except RedisConnectionError as error:
                logger.warning("worker %s: Redis does not answer (%s); retrying in %.0f s", self.name, error, delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _renew_liveness(self, job: Job, stop: threading.Event) -> None:
        """Renew the worker key, the execution and the started-registry entry: a third of the TTL apart.

        A registration Redis lost (restart without persistence) is written whole again first, with the
        current job and its started-registry entry, so the lost-run check keeps seeing the run alive.
        """
        ttl = liveness_ttl_seconds()
        while not stop.wait(ttl / 3):
            execution = self.execution
            if execution is None:
                return
            try:
                self._register_again_if_lost(ttl, job)
                with self.connection.pipeline() as pipeline:
                    super().heartbeat(ttl, pipeline=pipeline)
                    execution.heartbeat(job.started_job_registry, ttl, pipeline=pipeline)
                    job.heartbeat(now(), ttl, pipeline=pipeline, xx=True)
                    pipeline.execute()
            except RedisError as error:  # Redis restarting: try again on the next beat
                logger.warning("worker %s could not renew its liveness in Redis: %s", self.name, error)
