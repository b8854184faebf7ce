"""Services a fault test may break on purpose: a Redis of its own to restart, a PostgreSQL server of its own.

The session's Redis (`redis_url`) and the machine's PostgreSQL are shared with every other test and,
for PostgreSQL, with everyone on the machine: a fault test restarts only servers it started itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.fixtures.services import _answers, _free_port

POSTGRES_BINARIES = Path(os.environ.get("REFINERY_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass
class RestartableRedis:
    """A `redis-server` this test owns; `restart()` stops it and starts an empty one on the same port.

    No persistence, like the demo's Redis: a restart loses every queue, job and worker registration,
    the worst case a worker and the site must live through.
    """

    port: int
    directory: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        assert executable is not None
        self.process = subprocess.Popen(
            [
                executable,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not _answers(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start (exit {self.process.poll()})")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()
        assert redis.Redis.from_url(self.url).dbsize() == 0, "the restarted Redis kept data"


@pytest.fixture
def restartable_redis() -> Iterator[RestartableRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("restarting Redis needs redis-server on PATH (apt-get install redis-server)")
    server = RestartableRedis(port=_free_port(), directory=Path(tempfile.mkdtemp(prefix="refinery-fault-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp directory, on a free port, run by the `postgres` system user when we are root."""

    directory: Path
    port: int
    run_as: str | None

    @property
    def data_directory(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def command(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.run_as, "--"] if self.run_as else []
        return subprocess.run([*prefix, *arguments], check=check, capture_output=True, text=True, timeout=120)

    def initialize(self) -> None:
        self.command(
            str(POSTGRES_BINARIES / "initdb"),
            "-D",
            str(self.data_directory),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.command(
            str(POSTGRES_BINARIES / "pg_ctl"),
            "-D",
            str(self.data_directory),
            "-o",
            options,
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, check: bool = True) -> None:
        self.command(
            str(POSTGRES_BINARIES / "pg_ctl"), "-D", str(self.data_directory), "-m", "fast", "-w", "stop", check=check
        )

    def restart(self, down_seconds: float) -> None:
        """Stop the server (closing every client connection), stay down for a while, start it again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def psql(self, database: str, sql: str) -> str:
        result = self.command(
            str(POSTGRES_BINARIES / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-Atc",
            sql,
        )
        return result.stdout


@pytest.fixture
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """Our own PostgreSQL server to restart at will; the machine's shared server is never touched."""
    for binary in ("initdb", "pg_ctl", "pg_dump", "psql"):
        if not (POSTGRES_BINARIES / binary).exists():
            pytest.skip(f"a restartable PostgreSQL needs {POSTGRES_BINARIES / binary} (apt-get install postgresql-15)")
    run_as = None
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("initdb refuses root and runuser is missing to run it as the postgres user")
        run_as = "postgres"
    directory = Path(tempfile.mkdtemp(prefix="refinery-fault-postgres-"))
    if run_as:
        shutil.chown(directory, user=run_as)
    server = ThrowawayPostgres(directory=directory, port=_free_port(), run_as=run_as)
    try:
        server.initialize()
        server.start()
    except subprocess.CalledProcessError as error:
        shutil.rmtree(directory, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL: {error.stderr or error.stdout}")
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop(check=False)
        shutil.rmtree(directory, ignore_errors=True)
