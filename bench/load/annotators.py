"""Load test of the annotation workspace: gunicorn on PostgreSQL, many annotators judging at once, a researcher polling.

What it does, in order:

1. migrates the database named by `--database-url` (PostgreSQL; use one of its own, it gets users,
   campaigns and a run added) and creates the annotators, a researcher, one campaign for the crowd,
   one campaign for the solo baseline, and a running run for the researcher to watch;
2. starts gunicorn (`webapp.wsgi`, gthread workers) on a free local port with the same settings;
3. baseline: one annotator alone judges `--solo-judgments` items;
4. load: `--annotators` annotators judge for `--duration` seconds, each pausing `--think` seconds
   (uniform, ±50%) between receiving an item and answering it, while one researcher polls what a
   researcher's browser polls: the run's live partial every second, the dashboard every 2 s, the
   campaign statistics every 5 s and the run list every 10 s;
5. checks the database: every successful judge request stored exactly one judgment (stored ==
   accepted, no (item, annotator) twice, no item beyond the overlap, submission keys unique);
6. prints one JSON object (and writes it with `--output`): requests, errors, p50/p95/p99 of the
   judge request under load and for the annotator alone, the researcher's pages, the checks.

The client is one asyncio process (httpx), so the machine running it shares its cores with gunicorn
and PostgreSQL; the load average before and after is recorded with the figures. Each annotator's
session is made in the database the way `Client.force_login` does (no login form, so the login
throttle plays no part). Run from the repository root:

    .venv/bin/python bench/load/annotators.py --database-url postgres://postgres@127.0.0.1:5432/refinery_load \\
        --output bench/results/load-annotators.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
ITEM_PATTERN = re.compile(r'name="item" value="(\d+)"')
KEY_PATTERN = re.compile(r'name="submission_key" value="(\w+)"')


@dataclass
class Tally:
    """Timings and outcomes of one kind of request."""

    seconds: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    retries: int = 0

    def record(self, started: float, status: str, problem: str = "") -> None:
        self.seconds.append(time.perf_counter() - started)
        self.statuses[status] += 1
        if problem and len(self.errors) < 20:
            self.errors.append(problem)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.seconds)
        return {
            "requests": len(ordered),
            "statuses": dict(self.statuses),
            "errors": sum(count for status, count in self.statuses.items() if status != "200"),
            "p50_ms": _percentile_ms(ordered, 50),
            "p95_ms": _percentile_ms(ordered, 95),
            "p99_ms": _percentile_ms(ordered, 99),
            "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
            "retried_after_closed_connection": self.retries,
            "first_errors": self.errors[:5],
        }


def _percentile_ms(ordered: list[float], percent: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index] * 1000, 1)


# ---------------------------------------------------------------- set-up (Django, in this process)


def _django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.dev")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _prepare(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Users, the two campaigns and a running run; returns what the clients need (ids, session keys)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from webapp.annotation import services as annotation_services
    from webapp.library.models import Rubric
    from webapp.runs.models import PipelineRun
    from webapp.runs.services import artifact_register

    call_command("migrate", verbosity=0)
    tag = uuid.uuid4().hex[:6]
    User = get_user_model()

    def user(role: str, name: str) -> Any:
        return User.objects.create_user(username=f"load-{tag}-{name}", password=secrets.token_hex(8), role=role)

    def session(account: Any) -> str:
        client = Client()
        client.force_login(account)
        return client.cookies["sessionid"].value

    def artifact(rows: int, name: str) -> Any:
        path = workdir / f"{name}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for index in range(1, rows + 1):
                handle.write(
                    json.dumps(
                        {
                            "prompt": f"Question {index}: how do I reverse a list in Python? " + "Context. " * 40,
                            "chosen": f"Answer {index}: use reversed() or slicing with [::-1]. " + "Detail. " * 60,
                            "rejected": f"Answer {index}: you cannot. " + "Filler. " * 60,
                            "chosen_config": "good",
                            "rejected_config": "bad",
                        }
                    )
                    + "\n"
                )
        return artifact_register(run=None, name=f"load-{tag}-{name}", kind="comparisons", jsonl_path=path)

    researcher = user("researcher", "researcher")
    rubric = Rubric.objects.create(
        name=f"load-{tag}", criteria="Correct and concise is better.", guidelines="Read the prompt."
    )
    annotators = [user("annotator", f"annotator-{number:02d}") for number in range(args.annotators)]
    crowd = annotation_services.campaign_create(
        user=researcher,
        name=f"load-{tag}-crowd",
        artifact=artifact(args.items, "crowd"),
        rubric=rubric,
        sample_size=args.items,
        overlap=args.overlap,
        assignees=annotators,
        flags=["factual error"],
        seed=1,
    )
    solo_annotator = user("annotator", "solo")
    solo = annotation_services.campaign_create(
        user=researcher,
        name=f"load-{tag}-solo",
        artifact=artifact(args.solo_judgments, "solo"),
        rubric=rubric,
        sample_size=args.solo_judgments,
        overlap=1,
        assignees=[solo_annotator],
        flags=["factual error"],
        seed=1,
    )
    run = PipelineRun.objects.create(
        kind="generate",
        name=f"load-{tag}",
        created_by=researcher,
        status=PipelineRun.Status.RUNNING,
        stage="generate",
        progress_total=1000,
        progress_done=10,
    )
    return {
        "crowd_campaign": crowd.pk,
        "solo_campaign": solo.pk,
        "run": run.pk,
        "annotator_sessions": [session(account) for account in annotators],
        "solo_session": session(solo_annotator),
        "researcher_session": session(researcher),
    }


def _ratios(results: dict[str, Any]) -> dict[str, float | None]:
    """The judge request's latency under load over the same measure for the annotator alone (same process)."""
    solo, crowd = results["solo"]["judge"], results["load"]["judge"]

    def ratio(measure: str) -> float | None:
        return round(crowd[measure] / solo[measure], 2) if solo.get(measure) and crowd.get(measure) else None

    return {"judge_p50_load_over_solo": ratio("p50_ms"), "judge_p95_load_over_solo": ratio("p95_ms")}


def _database_checks(campaign_id: int, accepted: int, overlap: int) -> dict[str, Any]:
    """Exactly-once checks in the database after the load."""
    from django.db.models import Count

    from webapp.annotation.models import Judgment

    judgments = Judgment.objects.filter(item__campaign_id=campaign_id)
    stored = judgments.count()
    current = judgments.filter(withdrawn_at__isnull=True)
    distinct_pairs = current.values("item_id", "annotator_id").distinct().count()
    per_item = (
        current.values("item_id").annotate(judges=Count("pk")).order_by("-judges").values_list("judges", flat=True)
    )
    most = per_item.first() or 0
    checks = {
        "judgments_stored": stored,
        "judge_requests_accepted": accepted,
        "distinct_item_annotator_pairs": distinct_pairs,
        "distinct_submission_keys": judgments.values("submission_key").distinct().count(),
        "most_judgments_on_one_item": most,
        "overlap": overlap,
    }
    checks["stored_exactly_once"] = stored == accepted == distinct_pairs == checks["distinct_submission_keys"]
    checks["overlap_respected"] = most <= overlap
    return checks


# ---------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_gunicorn(args: argparse.Namespace, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": args.database_url,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "webapp.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--worker-class",
        "gthread",
        "--timeout",
        "60",
        "--log-level",
        "warning",
        # Longer than an annotator's pause, as a proxy in front would keep them (gunicorn's default is 2 s).
        "--keep-alive",
        "30",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit(f"gunicorn did not answer /healthz within 60 s: {log_path.read_text()[-2000:]}")


# ---------------------------------------------------------------- the clients


def _client(base: str, session_key: str) -> httpx.AsyncClient:
    csrf = secrets.token_hex(16)  # 32 characters: valid as both the cookie and the header
    return httpx.AsyncClient(
        base_url=base,
        cookies={"sessionid": session_key, "csrftoken": csrf},
        headers={"X-CSRFToken": csrf, "HX-Request": "true", "Referer": base + "/"},
        timeout=httpx.Timeout(60.0),
    )


async def _annotate(
    base: str,
    session_key: str,
    campaign_id: int,
    *,
    think: float,
    stop_at: float,
    limit: int,
    judge: Tally,
    pages: Tally,
) -> int:
    """One annotator: read the workspace, then answer and receive the next item until time or items run out."""
    accepted = 0
    workspace = f"/annotation/{campaign_id}/work/"
    async with _client(base, session_key) as client:
        started = time.perf_counter()
        try:
            response = await client.get(workspace)
        except httpx.HTTPError as error:
            pages.record(started, "exception", repr(error))
            return 0
        pages.record(started, str(response.status_code), "" if response.status_code == 200 else response.text[:200])
        html = response.text
        while time.monotonic() < stop_at and accepted < limit:
            item, key = ITEM_PATTERN.search(html), KEY_PATTERN.search(html)
            if item is None or key is None:
                break
            await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))
            body = {
                "item": item.group(1),
                "choice": random.choice(["left", "right", "tie"]),
                "submission_key": key.group(1),
                "seconds_spent": f"{think:.1f}",
            }
            started = time.perf_counter()
            try:
                response = await _post_retrying_a_closed_connection(client, workspace + "judge/", body, judge)
            except httpx.HTTPError as error:
                judge.record(started, "exception", repr(error))
                break
            status = str(response.status_code)
            judge.record(started, status, "" if status == "200" else f"{status}: {response.text[:200]}")
            if status != "200":
                break
            accepted += 1
            html = response.text
    return accepted


async def _post_retrying_a_closed_connection(
    client: httpx.AsyncClient, path: str, body: dict[str, str], tally: Tally
) -> httpx.Response:
    """POST once more when a kept-alive connection was closed under the request, as browsers do.

    The retry carries the same submission key, so it also exercises "a retried judgment is stored once".
    """
    try:
        return await client.post(path, data=body)
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
        tally.retries += 1
        return await client.post(path, data=body)


async def _research(
    base: str, session_key: str, run_id: int, campaign_id: int, stop_at: float, tallies: dict[str, Tally]
) -> None:
    """What a researcher's open tabs poll: the live run partial (1 s), dashboard (2 s), statistics (5 s), run list (10 s)."""
    schedule = {
        "run_live": (f"/runs/{run_id}/", 1.0),
        "dashboard": ("/dashboard/", 2.0),
        "campaign_statistics": (f"/annotation/{campaign_id}/", 5.0),
        "run_list": ("/runs/", 10.0),
    }
    async with _client(base, session_key) as client:

        async def poll(name: str, path: str, every: float) -> None:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    response = await client.get(path)
                    status = str(response.status_code)
                    tallies[name].record(started, status, "" if status == "200" else f"{status}: {response.text[:200]}")
                except httpx.HTTPError as error:
                    tallies[name].record(started, "exception", repr(error))
                await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))

        await asyncio.gather(*(poll(name, path, every) for name, (path, every) in schedule.items()))


async def _load(base: str, prepared: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    solo_judge, solo_pages = Tally(), Tally()
    solo_started = time.monotonic()
    await _annotate(
        base,
        prepared["solo_session"],
        prepared["solo_campaign"],
        think=args.think,
        stop_at=solo_started + 600,
        limit=args.solo_judgments,
        judge=solo_judge,
        pages=solo_pages,
    )
    judge, pages = Tally(), Tally()
    research: dict[str, Tally] = defaultdict(Tally)
    started = time.monotonic()
    stop_at = started + args.duration
    accepted = await asyncio.gather(
        *(
            _annotate(
                base,
                session,
                prepared["crowd_campaign"],
                think=args.think,
                stop_at=stop_at,
                limit=10**9,
                judge=judge,
                pages=pages,
            )
            for session in prepared["annotator_sessions"]
        ),
        _research(base, prepared["researcher_session"], prepared["run"], prepared["crowd_campaign"], stop_at, research),
    )
    elapsed = time.monotonic() - started
    return {
        "solo": {"judge": solo_judge.summary(), "workspace": solo_pages.summary()},
        "load": {
            "seconds": round(elapsed, 1),
            "judge": judge.summary(),
            "judgments_per_second": round(judge.statuses["200"] / elapsed, 2),
            "workspace": pages.summary(),
            "researcher": {name: tally.summary() for name, tally in sorted(research.items())},
        },
        "accepted": sum(count for count in accepted if isinstance(count, int)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="PostgreSQL database of its own (migrated, data added)")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--duration", type=float, default=150.0, help="seconds of load")
    parser.add_argument("--think", type=float, default=2.0, help="mean pause before each answer, seconds")
    parser.add_argument("--items", type=int, default=2500)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--solo-judgments", type=int, default=60)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a PostgreSQL URL (the test is about PostgreSQL under gunicorn)")

    _django(args.database_url)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="refinery-load-") as temporary:
        workdir = Path(temporary)
        prepared = _prepare(args, workdir)
        port = _free_port()
        server = _start_gunicorn(args, port, workdir / "gunicorn.log")
        try:
            results = asyncio.run(_load(f"http://127.0.0.1:{port}", prepared, args))
        finally:
            server.terminate()
            server.wait(timeout=30)
            server_log = (workdir / "gunicorn.log").read_text(errors="replace")[-3000:]
    from django.db import connection

    checks = _database_checks(prepared["crowd_campaign"], results.pop("accepted"), args.overlap)
    report = {
        "benchmark": "bench/load/annotators.py",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "database": "PostgreSQL {}.{}".format(*divmod(connection.cursor().connection.info.server_version, 10000)),
            "load_average_1_5_15_before": [round(value, 2) for value in load_before],
            "load_average_1_5_15_after": [round(value, 2) for value in os.getloadavg()],
            "note": "client, gunicorn and PostgreSQL share this machine's cores",
        },
        "settings": {
            "annotators": args.annotators,
            "duration_seconds": args.duration,
            "think_seconds_mean": args.think,
            "items": args.items,
            "overlap": args.overlap,
            "gunicorn": f"{args.workers} workers x {args.threads} threads (gthread)",
            "django_settings": os.environ["DJANGO_SETTINGS_MODULE"] + " with DEBUG=0",
        },
        **results,
        "database_checks": checks,
        # The figure to compare across hosts: how much slower a judge request is under the crowd than alone.
        "ratios": _ratios(results),
        "errors_total": results["load"]["judge"]["errors"]
        + results["load"]["workspace"]["errors"]
        + sum(page["errors"] for page in results["load"]["researcher"].values()),
        "server_log_tail": server_log if "Traceback" in server_log or "ERROR" in server_log else "",
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
