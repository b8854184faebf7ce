"""ALMoST to the end, from the browser: one run on the demo seed prompts through the site, measured.

What it does, in order, against a running site and worker (`./scripts/demo.sh` brings both up):

1. logs in with Chromium (Debian's, never a download) and fills `/almost/new/` as a user would:
   the demo seed prompts, the demo rubric (two configurations of the bundled model), `--prompts`
   generated prompts, "Train the SFT policy" and "Then RL" ticked, the RL preset `--rl-preset`,
   `--held-out` held-out prompts, and the heuristic filters named by `--filter-off` unticked;
2. waits for the run, reading its stage and status from the JSON API with the browser's session,
   while a thread samples the resident memory of the worker's process tree (`--worker-pid`) and
   keeps the peak per stage;
3. clicks the run page's "Win rate: RL vs SFT vs base" and waits for that evaluation;
4. prints one JSON object (and writes it with `--out`): the reward model's held-out accuracy, the
   comparisons kept, the base/SFT/RL policies' mean reward, spread, length and KL on the held-out
   prompts, the RL curve, the KL at the end, the win rates with their intervals, wall seconds per
   stage, the worker's peak memory per stage, and the models registered with their lineage.

Run from the repository root, after `./scripts/demo.sh`:

    .venv/bin/python bench/almost_chain.py --password "$(cat var/admin-password.txt)" \\
        --worker-pid "$(cat var/worker.pid)" --out bench/results/almost-chain-cpu-2core.json

The figures are the run's own (its summary and its evaluation through `/api/v1/`); the script adds
only the memory samples and the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.methods import describe_machine  # noqa: E402  (one description of the machine for every benchmark)

CHROMIUM = "/usr/bin/chromium"
FINISHED = {"succeeded", "failed", "cancelled", "lost"}


class TreeMemorySampler(threading.Thread):
    """Peak resident memory (MiB) of a process and its descendants, kept per stage the caller names."""

    def __init__(self, pid: int, interval_seconds: float = 0.5) -> None:
        super().__init__(daemon=True)
        import psutil

        self.root = psutil.Process(pid)
        self.interval_seconds = interval_seconds
        self.stage = "queued"
        self.peak_mib: dict[str, float] = {}
        self.peak_single_process_mib: dict[str, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stopped.wait(self.interval_seconds):
            try:
                processes = [self.root, *self.root.children(recursive=True)]
                sizes = []
                for process in processes:
                    try:
                        sizes.append(process.memory_info().rss / 2**20)
                    except psutil.Error:
                        continue
            except psutil.Error:
                continue
            stage = self.stage
            self.peak_mib[stage] = round(max(self.peak_mib.get(stage, 0.0), sum(sizes)), 1)
            self.peak_single_process_mib[stage] = round(max(self.peak_single_process_mib.get(stage, 0.0), max(sizes)), 1)


def stage_key(stage: str) -> str:
    """A run's stage line ("rl · step 3/6", "rg: cfg 2/2") cut to the stage's name."""
    for separator in (" · ", ":", " "):
        stage = stage.split(separator, 1)[0]
    return stage.strip() or "queued"


def api_json(page: Any, url: str) -> dict[str, Any]:
    response = page.request.get(url)
    if not response.ok:
        raise RuntimeError(f"GET {url}: HTTP {response.status}: {response.text()[:500]}")
    return response.json()


def wait_for_run(page: Any, base_url: str, run_id: int, timeout: float, sampler: TreeMemorySampler | None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last_line = ""
    while time.monotonic() < deadline:
        run = api_json(page, f"{base_url}/api/v1/runs/{run_id}")
        if sampler is not None:
            sampler.stage = stage_key(run.get("stage") or "") if run["status"] == "running" else sampler.stage
        line = f"run {run_id}: {run['status']} · {run.get('stage') or ''}"
        if line != last_line:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)
            last_line = line
        if run["status"] in FINISHED:
            return run
        time.sleep(3)
    raise TimeoutError(f"run {run_id} did not finish in {timeout:.0f} s")


def start_run(page: Any, base_url: str, arguments: argparse.Namespace) -> int:
    page.goto(f"{base_url}/almost/new/")
    page.fill("input[name=name]", arguments.name)
    page.select_option("select[name=seed_prompt_set]", label=page.locator(
        "select[name=seed_prompt_set] option", has_text=arguments.seed_prompt_set).first.inner_text())
    page.fill("input[name=num_generation]", str(arguments.prompts))
    page.check("input[name=policy_sft]")
    page.check("input[name=policy_rl]")
    page.select_option("select[name=rl_preset]", arguments.rl_preset)
    for name in arguments.filter_off:
        page.uncheck(f"input[name=filter_{name}]")
    page.locator("summary", has_text="Advanced").first.click()
    page.fill("input[name=rl_held_out_prompts]", str(arguments.held_out))
    if arguments.rl_max_steps:
        page.fill("input[name=rl_max_steps]", str(arguments.rl_max_steps))
    page.get_by_role("button", name="Start ALMoST run").click()
    page.wait_for_url("**/runs/*/", timeout=60_000)
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def evaluate_policies(page: Any, base_url: str, run_id: int, timeout: float) -> dict[str, Any]:
    page.goto(f"{base_url}/runs/{run_id}/")
    page.click("#almost-evaluate-policies")
    page.wait_for_url("**/evaluations/*/", timeout=60_000)
    evaluation_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    evaluation = api_json(page, f"{base_url}/api/v1/evaluations/{evaluation_id}")
    run = wait_for_run(page, base_url, evaluation["run"], timeout, None)
    evaluation = api_json(page, f"{base_url}/api/v1/evaluations/{evaluation_id}")
    return {"run": run, "evaluation": evaluation}


def models_with_lineage(page: Any, base_url: str, summary: dict[str, Any]) -> dict[str, Any]:
    models = {}
    for role, key in (("reward_model", "reward_model_id"), ("sft_policy", "sft_policy_id"), ("rl_policy", "rl_policy_id")):
        if summary.get(key):
            models[role] = api_json(page, f"{base_url}/api/v1/models/{summary[key]}")
    return models


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=os.environ.get("REFINERY_PASSWORD", ""))
    parser.add_argument("--name", default="ALMoST to the end (bench/almost_chain.py)")
    parser.add_argument("--seed-prompt-set", default="Demo seed prompts")
    parser.add_argument("--prompts", type=int, default=48, help="prompts to generate (the form's Num generation)")
    parser.add_argument("--held-out", type=int, default=16, help="generated prompts held out for the policies")
    parser.add_argument("--rl-preset", default="cpu-demo")
    parser.add_argument("--rl-max-steps", type=int, default=0, help="0 keeps the preset's steps")
    parser.add_argument(
        "--filter-off", nargs="*", default=["no_final_punctuation"],
        help="heuristic filters to untick (the 135M model's answers are cut at the token limit, which this filter drops)",
    )
    parser.add_argument("--worker-pid", type=int, default=0, help="the rqworker's pid, for peak memory per stage")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--screenshot", type=Path, help="a full-page picture of the finished run page")
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def main() -> None:
    from playwright.sync_api import sync_playwright

    arguments = parse_arguments()
    sampler = TreeMemorySampler(arguments.worker_pid) if arguments.worker_pid else None
    machine_before = {**describe_machine(), "load_average": os.getloadavg()}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(f"{arguments.url}/accounts/login/")
        page.fill("input[name=username]", arguments.username)
        page.fill("input[name=password]", arguments.password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if sampler is not None:
            sampler.start()
        started = time.monotonic()
        run_id = start_run(page, arguments.url, arguments)
        print(f"queued ALMoST run {run_id}: {arguments.url}/runs/{run_id}/", file=sys.stderr, flush=True)
        run = wait_for_run(page, arguments.url, run_id, arguments.timeout, sampler)
        run_seconds = round(time.monotonic() - started, 1)
        if sampler is not None:
            sampler.stage = "win-rate evaluation"
        summary = run.get("summary") or {}
        result: dict[str, Any] = {
            "run": {"id": run_id, "status": run["status"], "error": run.get("error"), "wall_seconds": run_seconds},
            "config": run.get("config"),
        }
        if run["status"] == "succeeded":
            evaluated_at = time.monotonic()
            evaluation = evaluate_policies(page, arguments.url, run_id, arguments.timeout)
            result["win_rate_evaluation"] = {
                **evaluation["evaluation"],
                "wall_seconds": round(time.monotonic() - evaluated_at, 1),
                "status": evaluation["run"]["status"],
            }
            result["models"] = models_with_lineage(page, arguments.url, summary)
            if arguments.screenshot:
                page.goto(f"{arguments.url}/runs/{run_id}/")
                page.screenshot(path=str(arguments.screenshot), full_page=True)
        browser.close()
    if sampler is not None:
        sampler.stopped.set()
        result["worker_peak_rss_mib"] = {"tree": sampler.peak_mib, "largest_process": sampler.peak_single_process_mib}
    result["summary"] = summary
    result["figures"] = headline_figures(summary, result.get("win_rate_evaluation"))
    result["machine"] = {**machine_before, "load_average_after": os.getloadavg()}
    text = json.dumps(result, indent=2, default=str)
    if arguments.out:
        arguments.out.write_text(text + "\n")
    print(json.dumps(result["figures"], indent=2, default=str))


def headline_figures(summary: dict[str, Any], evaluation: dict[str, Any] | None) -> dict[str, Any]:
    """The figures the issue asks a note to report, picked from the run's summary and its evaluation."""
    policies = (summary.get("policy_evaluation") or {}).get("policies", {})
    rl = summary.get("rl") or {}
    return {
        "reward_model_held_out_accuracy": (summary.get("reward_training") or {}).get("held_out_accuracy"),
        "reward_training": summary.get("reward_training"),
        "comparisons": summary.get("comparisons"),
        "policies_on_held_out_prompts": policies,
        "rl_kl_at_end": rl.get("held_out/kl"),
        "rl_summary": rl,
        "stage_seconds": summary.get("stage_seconds"),
        "win_rates": (evaluation or {}).get("results"),
    }


if __name__ == "__main__":
    main()
