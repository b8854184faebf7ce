"""Client tests: the live test server (pytest-django's `live_server`, the real API), a token, and the CLI run in-process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import django_rq
import pytest

from refinery_client.cli import main
from tests.fixtures.services import QUEUES
from webapp.api.tokens import token_create


@dataclass
class CommandResult:
    status: int
    stdout: str
    stderr: str


@pytest.fixture
def client_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's config file in the test's own folder; no REFINERY_URL/REFINERY_TOKEN from outside."""
    path = tmp_path / "refinery-config" / "config.json"
    monkeypatch.setenv("REFINERY_CONFIG", str(path))
    monkeypatch.delenv("REFINERY_URL", raising=False)
    monkeypatch.delenv("REFINERY_TOKEN", raising=False)
    return path


@pytest.fixture
def api_site(transactional_db: Any, live_server: Any, live_settings: Any, researcher: Any) -> Iterator[Any]:
    """The live server's URL and a researcher's token; runs it queues land in the test Redis."""

    @dataclass
    class Site:
        url: str
        token: str
        user: Any

    yield Site(url=live_server.url, token=token_create(user=researcher, name="cli tests").secret, user=researcher)
    for queue_name in QUEUES:  # jobs of runs this test queued must not reach a later test's worker
        django_rq.get_queue(queue_name).empty()


@pytest.fixture
def refinery(client_config: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., CommandResult]:
    """`refinery("runs", "list")`: the CLI's main() in this process, with its exit status and output."""

    def run(*arguments: str) -> CommandResult:
        capsys.readouterr()
        try:
            status = main(list(arguments))
        except SystemExit as exit_:  # argparse refuses a command line by exiting 2
            status = int(exit_.code or 0)
        captured = capsys.readouterr()
        return CommandResult(status, captured.out, captured.err)

    return run
