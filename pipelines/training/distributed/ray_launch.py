"""Training across the hosts of a Ray cluster: Ray Train's `TorchTrainer` runs the same rank entry point as torchrun.

The RQ job that calls `launch_ray` is the Ray driver: it connects to the cluster (`RAY_ADDRESS`), submits
one small task that runs `TorchTrainer.fit()` (Ray Train's controller and its N workers, one per GPU or
one per CPU process), and while that task runs it replays rank 0's events into the worker's `Progress`
and checks for a cancel. Every worker runs `rank.main(<job.json>)`, the torchrun command's own body, so
a Ray rank logs to `<run dir>/distributed/ranks/rank-<k>.log`, writes the same outcome file and stops on
the same cancel file as a torchrun rank. That is why the run directory must be on storage every node
sees (NFS or another shared mount under ARTIFACT_ROOT): the job file, the events, the checkpoints and
final/ are all read and written there (docs/multi-host.md).

- Cancel: the worker's `Progress.check_cancelled` raises `RunCancelled`; the supervisor writes the
  cancel file, the ranks save a checkpoint at the next step end and return, and the run ends cancelled
  with rank 0's message (where the checkpoint is). Ranks that have not stopped within
  `cancel_grace_seconds` are stopped by cancelling the fit task (Ray kills the controller it owns, and
  with it every worker actor); so is the group at once when anything else ends the supervision (a
  fenced attempt, the worker shutting down), and the driver's `ray.shutdown()` ends the Ray job.
- Failure: a rank that raises makes Ray Train stop the whole group; the run fails with that rank's
  error and the last lines of its log (`DistributedTrainingFailed`, as for torchrun).

Ray is an optional install (`ray[train]`, see requirements-dev.txt): this module imports it only when
a run asks for it, with a message naming the install when it is missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.common.store import RunStore
from pipelines.errors import InvalidConfigError, RunCancelled
from pipelines.training.config import PreferenceConfig, RewardConfig, SFTConfig
from pipelines.training.distributed.events import follow_events
from pipelines.training.distributed.job import DistributedJob
from pipelines.training.distributed.launch import DistributedTrainingFailed, last_log_lines
from pipelines.training.distributed.rank import FAILED_EXIT_CODE, outcome_path, read_outcome
from pipelines.training.distributed.rank import main as rank_main

if TYPE_CHECKING:
    from pipelines.common.progress import Progress
    from pipelines.common.result import PipelineResult
    from pipelines.llm.loader import BackendLoader
    from pipelines.training.result import TrainingResult
    from pipelines.training.run import TrainingInputs

RAY_ADDRESS_VARIABLE = "RAY_ADDRESS"
RAY_STORAGE_DIR = "ray"
"""Under the run's `distributed/` folder: Ray Train's own run state (the trainers keep their checkpoints in checkpoints/)."""
CODE_ROOT = Path(__file__).resolve().parents[3]
"""The repository root, on every node's PYTHONPATH (each node has Refinery installed at the same path)."""
PROPAGATED_VARIABLES = ("TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "TOKENIZERS_PARALLELISM")
"""Copied from the worker's environment to the ranks when set; HF_HUB_OFFLINE is always 1 there."""


class RayUnavailableError(InvalidConfigError):
    """The run asks for the Ray launcher but this worker cannot use it (Ray not installed, no cluster)."""


def ray_address() -> str:
    """The cluster this worker submits to (`RAY_ADDRESS`), or "" when none is configured."""
    return os.environ.get(RAY_ADDRESS_VARIABLE, "").strip()


def run_training_on_ray(
    config: SFTConfig | PreferenceConfig | RewardConfig,
    inputs: TrainingInputs,
    backends: BackendLoader,
    store: RunStore,
    progress: Progress,
    *,
    workers: int,
) -> PipelineResult:
    """`run_training` as a Ray Train group of `workers` on the cluster at `RAY_ADDRESS` (the pipeline shape).

    As `run_training_on_processes` does for torchrun: the run keeps the effective batch it started
    with, the worker resolves the model directories (which must be on the shared mount), a finished run
    only returns its result, and the worker's own backends are released before the group starts.
    """
    from pipelines.training.distributed.effective_batch import keep_effective_batch
    from pipelines.training.run import training_pipeline_result
    from pipelines.training.saving import finished_result

    if inputs.reference_model is not None and not isinstance(config, PreferenceConfig):
        raise InvalidConfigError("only preference training uses a reference model", field="reference_model")
    config = keep_effective_batch(config, store, workers, progress)
    progress.stage("load model", total=1)
    model_dir = backends.model_directory(inputs.model)
    reference_dir = backends.model_directory(inputs.reference_model) if inputs.reference_model else None
    progress.advance(1)
    done = finished_result(store)
    if done is not None:
        return training_pipeline_result(config, done)
    backends.release_all()
    job = DistributedJob.for_config(
        config,
        model_dir=model_dir,
        dataset_path=inputs.dataset_path,
        run_dir=store.root,
        reference_model_dir=reference_dir,
    )
    return training_pipeline_result(config, launch_ray(job, workers, ray_uses_gpu(config), progress))


def ray_uses_gpu(config: SFTConfig | PreferenceConfig | RewardConfig) -> bool | None:
    """Whether the run's workers take one GPU each: "cuda" yes, "cpu" no, "auto" (None) as the cluster has GPUs."""
    device = config.training.device
    return None if device == "auto" else device == "cuda"


def launch_ray(
    job: DistributedJob,
    workers: int,
    use_gpu: bool | None,
    progress: Progress,
    poll_seconds: float = 1.0,
    *,
    address: str | None = None,
    cancel_grace_seconds: float = 300.0,
) -> TrainingResult:
    """Train `job` on `workers` Ray Train workers: one GPU each (nccl) when `use_gpu`, else one CPU process each (gloo).

    `use_gpu` None decides by the cluster: GPU workers when it has any GPU. Blocks until the group ends;
    returns rank 0's `TrainingResult` (final/ in the run directory). Raises `RunCancelled` after a cancel,
    `DistributedTrainingFailed` when a rank failed, and `RayUnavailableError` when Ray is not installed,
    no cluster is configured, or the cluster has fewer GPUs or CPUs than the group needs. When it
    returns or raises, nothing of the group runs on the cluster any more.
    """
    if workers < 1:
        raise InvalidConfigError(f"a Ray training needs at least 1 worker; got {workers}", field="distributed")
    ray = _import_ray()
    target = address if address is not None else ray_address()
    owns_connection = not ray.is_initialized()
    if owns_connection:
        if not target:
            raise RayUnavailableError(
                f"the Ray launcher needs a cluster: set {RAY_ADDRESS_VARIABLE} on this worker "
                "(docs/multi-host.md says how to start one)",
                field="distributed",
            )
        ray.init(address=target, runtime_env={"env_vars": _rank_environment()}, log_to_driver=False)
    try:
        if use_gpu is None:
            use_gpu = ray.cluster_resources().get("GPU", 0) > 0
        _check_cluster_fits(ray, workers, use_gpu)
        return _supervise(ray, job, workers, use_gpu, progress, poll_seconds, cancel_grace_seconds)
    finally:
        if owns_connection:
            ray.shutdown()  # the driver's end: Ray stops whatever of this job still runs


def _supervise(
    ray: Any,
    job: DistributedJob,
    workers: int,
    use_gpu: bool,
    progress: Progress,
    poll_seconds: float,
    cancel_grace_seconds: float,
) -> TrainingResult:
    job.group_dir.mkdir(parents=True, exist_ok=True)
    for stale in (job.events_path, job.cancel_path):  # an earlier attempt's; its events are on the page already
        stale.unlink(missing_ok=True)
    for rank in range(workers):
        outcome_path(job, rank).unlink(missing_ok=True)
    job_path = job.write()
    devices = f"{workers} GPU workers, nccl" if use_gpu else f"{workers} CPU workers, gloo"
    address = ray.get_runtime_context().gcs_address
    progress.log(f"Ray Train on the cluster at {address}: {devices}; rank logs in {job.group_dir}")
    fit = ray.remote(num_cpus=0, max_retries=0)(_fit_group)
    started = time.monotonic()
    task = fit.remote(str(job_path), workers, use_gpu, str(job.group_dir / RAY_STORAGE_DIR), _rank_environment())
    cancel: RunCancelled | None = None
    stop_deadline = 0.0
    offset = 0
    try:
        while not ray.wait([task], timeout=poll_seconds)[0]:
            offset = follow_events(job.events_path, progress, offset)
            if cancel is None:
                try:
                    progress.check_cancelled()
                except RunCancelled as error:
                    cancel = error
                    stop_deadline = time.monotonic() + cancel_grace_seconds
                    job.cancel_path.touch()
                    progress.log("cancel asked: every rank saves a checkpoint at its next step end, then stops")
            elif time.monotonic() > stop_deadline:
                raise RunCancelled(
                    f"{cancel}; the ranks did not stop within {cancel_grace_seconds:.0f} s, so the Ray job was "
                    f"stopped; the newest complete checkpoint in {job.run_dir} is kept for a resume"
                )
        follow_events(job.events_path, progress, offset)
    except BaseException:  # cancelled past the grace, fenced, or the worker is shutting down: stop the group now
        ray.cancel(task, force=True)
        raise
    from pipelines.training.saving import finished_result  # transformers: only once a group has run

    outcome = ray.get(task)
    progress.log(f"the Ray Train group ended after {time.monotonic() - started:.1f} s: {outcome['status']}")
    if outcome["status"] == "failed":
        _raise_failure(job, workers, outcome["failures"], outcome["message"])
    first = read_outcome(job, 0) or {}
    if first.get("status") == "cancelled":
        raise RunCancelled(first.get("message") or str(cancel or "cancelled"))
    result = finished_result(RunStore(job.run_dir))
    if result is None:
        raise RuntimeError(f"the Ray Train group ended without rank 0 writing final/ in {job.run_dir}")
    return result


def _fit_group(job_path: str, workers: int, use_gpu: bool, storage_path: str, environment: dict[str, str]) -> dict:
    """Runs on the cluster as a Ray task: `TorchTrainer.fit()` over `workers` ranks; a plain dict back.

    Failures come back as data (rank -> message) so the driver needs none of Ray Train's exception types.
    """
    from ray.train import FailureConfig, RunConfig, ScalingConfig, TrainingFailedError, WorkerGroupError
    from ray.train.torch import TorchConfig, TorchTrainer

    trainer = TorchTrainer(
        _train_loop_per_worker,
        train_loop_config={"job_path": job_path},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(
            name=f"attempt-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=storage_path,
            failure_config=FailureConfig(max_failures=0),  # a rank's failure fails the run; resume is the user's call
            worker_runtime_env={"env_vars": environment},
        ),
    )
    try:
        trainer.fit()
    except WorkerGroupError as error:
        failures = {int(rank): _error_text(failure) for rank, failure in error.worker_failures.items()}
        return {"status": "failed", "failures": failures, "message": str(error)[:2000]}
    except TrainingFailedError as error:
        return {"status": "failed", "failures": {}, "message": _error_text(error)}
    return {"status": "finished"}


def _train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the torchrun rank's own body (`rank.main`, which calls `train_rank(job)`).

    Ray Train has set RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT and built the process
    group; a failed rank raises so Ray Train stops the others.
    """
    job_path = config["job_path"]
    if rank_main([job_path]) == FAILED_EXIT_CODE:
        job = DistributedJob.read(job_path)
        rank = int(os.environ.get("RANK", "0"))
        message = (read_outcome(job, rank) or {}).get("message") or "failed without a message"
        raise RuntimeError(f"rank {rank}: {message}")


def _raise_failure(job: DistributedJob, workers: int, failures: dict[int, str], message: str) -> None:
    """The rank that failed first, what it died of and its last log lines (the others were stopped by Ray Train)."""
    failed = [rank for rank in sorted(failures) if (read_outcome(job, rank) or {}).get("status") == "failed"]
    rank = failed[0] if failed else min(failures, default=None)
    if rank is None:
        raise DistributedTrainingFailed(None, f"the Ray Train group failed: {message}", [])
    reason = (read_outcome(job, rank) or {}).get("message") or failures[rank]
    raise DistributedTrainingFailed(
        rank, f"rank {rank} of {workers} failed: {reason}", last_log_lines(job.rank_log_path(rank))
    )


def _error_text(error: BaseException) -> str:
    """The exception's type and message; a `RayTaskError` stands for the worker's own exception (its `cause`)."""
    cause = getattr(error, "cause", None)
    shown = cause if isinstance(cause, BaseException) else error
    return f"{type(shown).__name__}: {shown}"[:2000]


def _check_cluster_fits(ray: Any, workers: int, use_gpu: bool) -> None:
    """Refuse a group the cluster can never hold (Ray Train would wait for it forever)."""
    resources = ray.cluster_resources()
    resource = "GPU" if use_gpu else "CPU"
    available = int(resources.get(resource, 0))
    if available < workers:
        raise RayUnavailableError(
            f"the Ray cluster has {available} {resource}(s) in all; the run asks for {workers} workers with one "
            f"{resource} each: lower the processes or add nodes (ray start --address=<head>:6379)"
        )


def _rank_environment() -> dict[str, str]:
    """The ranks' environment on every node: this code on PYTHONPATH, nothing fetched from a hub."""
    environment = {"PYTHONPATH": str(CODE_ROOT), "HF_HUB_OFFLINE": "1"}
    environment.update({name: os.environ[name] for name in PROPAGATED_VARIABLES if os.environ.get(name)})
    return environment


def _import_ray() -> Any:
    try:
        import ray
        import ray.train.torch  # noqa: F401 - the extra ray[train] brings it
    except ImportError as error:
        raise RayUnavailableError(
            "the Ray launcher needs Ray Train on this worker: pip install 'ray[train]==2.60.0' "
            f"(docs/multi-host.md); {error}"
        ) from error
    return ray
