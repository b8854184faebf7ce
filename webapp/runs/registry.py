"""Every run kind, declared once: what it is called, which queue runs it, which worker job, its page parts.

Each app declares its kinds in its `kinds.py` and registers them in `AppConfig.ready()`, the way
the admin registers models. Everything that differs by kind reads this registry: `run_create`
(the queue), the worker's dispatch (`workers/runner.py` imports `job`), the run page (the kind's
section), the run lists (the label). Adding a method is: declare its `RunKind`, register it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.common.progress_plan import PlannedStage


@dataclass(frozen=True)
class RunSection:
    """The kind's own part of the run page: a partial, rendered with `context(run)` (plus `run`).

    It sits inside the page's live partial, so it refreshes with the progress while the run is active.
    """

    template: str
    context: Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class RunClone:
    """How "Clone and edit" opens the kind's form with a finished run's settings (`?from_run=<id>`).

    - `form_url`: the URL name of the kind's "new run" page (several kinds may share one form).
    - `paths`: form field -> dotted path of its value in the config, for the fields not named like
      a config key (by default a field `n` takes the config's one `n` key, a model choice `model`
      its `model_id`; webapp/runs/clone.py).
    - `form_data`: the run's config -> the form's data, for a form the names cannot describe
      (ALMoST's rubric rows); its result is laid over what the names and `paths` found.

    Building the form from that data gives the same config again (tests check each kind).
    """

    form_url: str
    paths: Mapping[str, str] = field(default_factory=dict)
    form_data: Callable[[dict[str, Any]], dict[str, Any]] | None = None


@dataclass(frozen=True)
class RunKind:
    """One kind of run.

    - `kind`: the value stored in `PipelineRun.kind` (never change it once runs exist).
    - `queue`: the RQ queue its jobs go to ("gpu" for model work, "default" for jobs without a
      model), or a function of the run's config that names it (a job may need a model or not).
    - `job`: dotted path of the worker's `prepare(run, store)` for this kind (a string, so the web
      process never imports worker code or the libraries it needs).
    - `section`: the kind's part of the run page, if it has one.
    - `trains`: its jobs train a model (the run page shows training curves).
    - `form`, `config_build`: dotted paths of the form that validates a new run of this kind (the
      "new run" page's form) and of `build(valid_form) -> config`, so the page and the JSON API
      (webapp/api/) create runs through the same validation; empty when runs of this kind are not
      created from a run form (an evaluation has its own create endpoint).
    - `kind_from_config`: dotted path of `kind(config) -> str` when one form creates several kinds
      (training's trainer picks train_sft, train_preference or train_reward); empty: always `kind`.
    - `clone`: how its runs open the form again ("Clone and edit"); None: they cannot.
    - `stages`: the stages its pipeline reports, in order, as a function of the run's config
      (`pipelines.common.progress_plan`), so the run page shows the whole run's progress, not only
      the current stage's counts; None: the page shows the current stage's counts alone.
    """

    kind: str
    label: str
    queue: str | Callable[[dict[str, Any]], str]
    job: str
    section: RunSection | None = None
    trains: bool = False
    form: str = ""
    config_build: str = ""
    kind_from_config: str = ""
    clone: RunClone | None = None
    stages: Callable[[dict[str, Any]], Sequence[PlannedStage]] | None = None

    def queue_for(self, config: dict[str, Any]) -> str:
        """The queue a run of this kind with `config` goes to."""
        return self.queue(config) if callable(self.queue) else self.queue


class UnknownRunKind(LookupError):
    """No app registered this kind (its app is not installed, or the name is wrong)."""


_kinds: dict[str, RunKind] = {}


def register(*kinds: RunKind) -> None:
    """Declare kinds; registering the same kind twice is an error unless it is the same declaration."""
    for run_kind in kinds:
        existing = _kinds.get(run_kind.kind)
        if existing is not None and existing != run_kind:
            raise ValueError(f"run kind {run_kind.kind!r} is registered twice, differently")
        _kinds[run_kind.kind] = run_kind


def run_kind(kind: str) -> RunKind:
    """The declaration of `kind`."""
    try:
        return _kinds[kind]
    except KeyError:
        raise UnknownRunKind(
            f"run kind {kind!r} is not registered; registered: {', '.join(sorted(_kinds)) or 'none'}"
        ) from None


def all_run_kinds() -> list[RunKind]:
    """Every registered kind, in registration order (the order apps are installed)."""
    return list(_kinds.values())


def kind_label(kind: str) -> str:
    """The kind's label, or the raw value for a kind no installed app declares (an old run's)."""
    declared = _kinds.get(kind)
    return declared.label if declared is not None else kind
