"""`refinery`: the command-line client (docs/cli.md).

    refinery login --url http://127.0.0.1:8000 --token rfy_...
    refinery runs create generate --set max_new_tokens=64 --wait
    refinery artifacts download 7 --format parquet -o answers.parquet

Exit status: 0 done; 1 a waited-for run failed, was cancelled or lost; 2 bad usage or input the
server refused (each field's error printed); 3 not logged in or the token was refused; 4 any other
API or network error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from .client import RefineryClient, Run
from .config import config_write, settings_resolve
from .errors import ApiError, AuthenticationFailed, ConfigurationMissing, RunDidNotSucceed, ValidationFailed
from .progress import RunProgress

EXIT_RUN_DID_NOT_SUCCEED = 1
EXIT_REFUSED = 2
EXIT_NOT_LOGGED_IN = 3
EXIT_API_ERROR = 4
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "lost")


class UsageError(Exception):
    """The command line itself is wrong (found before anything is sent)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments, extra = parser.parse_known_args(argv)
    if extra:
        if getattr(arguments, "handler", None) is not _runs_create:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        try:
            arguments.assignments += field_options(extra)
        except UsageError as wrong:
            parser.error(str(wrong))
    if not hasattr(arguments, "handler"):  # `refinery`, or a group without its command (`refinery runs`)
        print(getattr(arguments, "group_parser", parser).format_help(), file=sys.stderr)
        return EXIT_REFUSED
    try:
        if arguments.handler is _login:
            return _login(arguments)
        settings = settings_resolve(url=arguments.url, token=arguments.token)
        with RefineryClient(settings.url, settings.token, timeout=arguments.timeout) as client:
            return arguments.handler(client, arguments)
    except UsageError as wrong:
        return _fail(str(wrong), EXIT_REFUSED)
    except ConfigurationMissing as missing:
        return _fail(str(missing), EXIT_NOT_LOGGED_IN)
    except AuthenticationFailed as refused:
        return _fail(refused.describe(), EXIT_NOT_LOGGED_IN)
    except ValidationFailed as refused:
        return _fail(refused.describe(), EXIT_REFUSED)
    except ApiError as failure:
        return _fail(failure.describe(), EXIT_API_ERROR)
    except httpx.HTTPError as failure:
        return _fail(f"Could not reach the server: {type(failure).__name__}: {failure}", EXIT_API_ERROR)
    except KeyboardInterrupt:
        return _fail("Interrupted (the run, if any, goes on: `refinery runs cancel ID` stops it).", 130)


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


# ---------------------------------------------------------------- arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="refinery", description="Refinery from the command line (docs/cli.md).", allow_abbrev=False
    )
    parser.add_argument("--url", help="the site, e.g. http://127.0.0.1:8000 (default: $REFINERY_URL or the login file)")
    parser.add_argument("--token", help="a personal API token (default: $REFINERY_TOKEN or the login file)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each answer (default 60)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    login = commands.add_parser("login", help="check a token and save it with the URL (mode 0600)")
    login.add_argument("--url", required=True, dest="login_url")
    login.add_argument("--token", required=True, dest="login_token")
    login.set_defaults(handler=_login)

    runs = _group(commands, "runs", "runs of every kind")
    kinds = runs.add_parser("kinds", help="the run kinds and their presets")
    kinds.set_defaults(handler=_runs_kinds)
    create = runs.add_parser("create", help="queue a run, validated like its form", allow_abbrev=False)
    create.add_argument("kind", help="a run kind (see `refinery runs kinds`), e.g. generate, augcon, spin, train_sft")
    create.add_argument("--preset", help="a preset of the kind; --preset '' for none (the paper's defaults)")
    create.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a form field; VALUE is read as JSON when it parses (3, true, [1,2]) and as text otherwise; repeatable. "
        "--FIELD VALUE says the same (--corpus 3 --max-tokens 64)",
    )
    create.add_argument("--name", default="", help="the run's name")
    create.add_argument(
        "--wait", action="store_true", help="show its progress until it ends; exit 1 unless it succeeds"
    )
    create.add_argument("--poll", type=float, default=1.0, help="seconds between progress reads with --wait")
    _json_option(create)
    create.set_defaults(handler=_runs_create)
    listing = runs.add_parser("list", help="runs, newest first")
    listing.add_argument("--status", choices=RUN_STATUSES)
    listing.add_argument("--kind")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    _json_option(listing)
    listing.set_defaults(handler=_runs_list)
    for name, handler, text in (
        ("show", _runs_show, "one run with its progress and artifacts"),
        ("cancel", _runs_cancel, "ask a run to stop"),
        ("resume", _runs_resume, "queue a failed, cancelled or lost run again"),
        ("wait", _runs_wait, "show a run's progress until it ends; exit 1 unless it succeeds"),
    ):
        command = runs.add_parser(name, help=text)
        command.add_argument("run_id", type=int, metavar="ID")
        _json_option(command)
        command.set_defaults(handler=handler)
    log = runs.add_parser("log", help="the last lines of a run's log")
    log.add_argument("run_id", type=int, metavar="ID")
    log.add_argument("--tail", type=int, default=200)
    log.set_defaults(handler=_runs_log)

    artifacts = _group(commands, "artifacts", "datasets runs produced or the library imported")
    listing = artifacts.add_parser("list", help="artifacts, newest first")
    listing.add_argument("--run", type=int)
    listing.add_argument("--kind")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--offset", type=int, default=0)
    _json_option(listing)
    listing.set_defaults(handler=_artifacts_list)
    show = artifacts.add_parser("show", help="an artifact's metadata")
    show.add_argument("artifact_id", type=int, metavar="ID")
    show.set_defaults(handler=lambda client, arguments: _print_json(client.artifacts.get(arguments.artifact_id)))
    rows = artifacts.add_parser("rows", help="rows of an artifact as JSON lines")
    rows.add_argument("artifact_id", type=int, metavar="ID")
    rows.add_argument("--offset", type=int, default=0)
    rows.add_argument("--limit", type=int, default=20)
    rows.set_defaults(handler=_artifacts_rows)
    download = artifacts.add_parser("download", help="stream an artifact's file")
    download.add_argument("artifact_id", type=int, metavar="ID")
    download.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl", dest="file_format")
    download.add_argument("-o", "--output", help="a file, or a directory for the server's file name (default: here)")
    download.set_defaults(handler=_artifacts_download)

    uploads = {
        "corpora": "JSONL, CSV, Parquet, text, Markdown, HTML, PDF or DOCX files; --set drop_duplicates=true",
        "prompt-sets": "one prompt per line (.txt) or JSONL/CSV with a prompt column",
        "datasets": "SFT or preference rows (JSONL, CSV, Parquet); --set purpose=sft|preference",
    }
    for group_name, text, extra in (
        ("models", "the model registry", ("lineage",)),
        ("corpora", "the library's corpora", ()),
        ("prompt-sets", "the library's seed prompt sets", ()),
        ("datasets", "the library's datasets", ()),
        ("evaluations", "win-rate evaluations", ()),
        ("campaigns", "annotation campaigns", ("statistics",)),
    ):
        group = _group(commands, group_name, text)
        if group_name in uploads:
            upload = group.add_parser("upload", help=f"upload {uploads[group_name]}")
            upload.add_argument("files", nargs="+", metavar="FILE")
            upload.add_argument("--name", required=True)
            upload.add_argument("--description")
            upload.add_argument("--set", dest="assignments", action="append", default=[], metavar="FIELD=VALUE")
            upload.set_defaults(handler=_uploader(group_name))
        listing = group.add_parser("list", help=f"{text}: list")
        listing.add_argument("--limit", type=int, default=50)
        listing.add_argument("--offset", type=int, default=0)
        _json_option(listing)
        listing.set_defaults(handler=_reader(group_name, "list"))
        for operation in ("show", *extra):
            command = group.add_parser(operation, help=f"one of {text}: {operation}")
            command.add_argument("object_id", type=int, metavar="ID")
            command.set_defaults(handler=_reader(group_name, operation))
    leaderboard = commands.add_parser("leaderboard", help="the evaluations' leaderboard")
    leaderboard.set_defaults(handler=lambda client, arguments: _print_json(client.evaluations.leaderboard()))
    return parser


def _group(commands: Any, name: str, text: str) -> Any:
    parser = commands.add_parser(name, help=text)
    parser.set_defaults(group_parser=parser)
    return parser.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON instead of text")


def field_options(tokens: list[str]) -> list[str]:
    """`runs create`'s other options as FIELD=VALUE: `--corpus 3 --max-tokens=64` is `--set corpus=3 --set max_tokens=64`."""
    assignments = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if not token.startswith("--") or len(token) == 2:
            raise UsageError(f"unexpected {token!r}: give form fields as --FIELD VALUE or --set FIELD=VALUE")
        name, separator, value = token[2:].partition("=")
        if not separator:
            if position + 1 >= len(tokens) or tokens[position + 1].startswith("--"):
                raise UsageError(f"--{name} needs a value (--{name} VALUE)")
            position += 1
            value = tokens[position]
        assignments.append(f"{name.replace('-', '_')}={value}")
        position += 1
    return assignments


def parse_assignments(assignments: list[str]) -> dict[str, Any]:
    """`--set field=value` pairs as the request's fields; a value is JSON when it parses, text otherwise."""
    fields: dict[str, Any] = {}
    for assignment in assignments:
        name, separator, raw = assignment.partition("=")
        if not separator or not name.strip():
            raise UsageError(f"--set {assignment!r}: write FIELD=VALUE, e.g. --set max_new_tokens=64")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        fields[name.strip()] = value
    return fields


# ---------------------------------------------------------------- commands


def _login(arguments: argparse.Namespace) -> int:
    with RefineryClient(arguments.login_url, arguments.login_token, timeout=arguments.timeout) as client:
        client.runs.kinds()  # a read that needs the token: a wrong one fails here, not at the first real command
    path = config_write(url=arguments.login_url, token=arguments.login_token)
    print(f"Logged in to {arguments.login_url.rstrip('/')}; saved to {path} (readable by you only).")
    return 0


def _runs_kinds(client: RefineryClient, arguments: argparse.Namespace) -> int:
    for kind in client.runs.kinds():
        presets = ", ".join(preset["name"] for preset in kind.get("presets", [])) or "—"
        print(f"{kind['kind']:<18} {kind['label']}  (presets: {presets})")
    return 0


def _runs_create(client: RefineryClient, arguments: argparse.Namespace) -> int:
    run = client.runs.create(
        arguments.kind, fields=parse_assignments(arguments.assignments), preset=arguments.preset, name=arguments.name
    )
    print(f"Queued run #{run['id']} ({run['kind']}): {client.base_url}{run['url']}", file=sys.stderr)
    if not arguments.wait:
        return _print_run(run, arguments)
    return _wait(client, run["id"], arguments)


def _wait(client: RefineryClient, run_id: int, arguments: argparse.Namespace) -> int:
    progress = RunProgress()
    try:
        run = client.runs.wait(run_id, poll_seconds=getattr(arguments, "poll", 1.0), on_update=progress)
    except RunDidNotSucceed as ended:
        progress.close()
        _print_run(ended.run, arguments)
        return _fail(str(ended), EXIT_RUN_DID_NOT_SUCCEED)
    progress.close()
    return _print_run(run, arguments)


def _runs_list(client: RefineryClient, arguments: argparse.Namespace) -> int:
    page = client.runs.list(
        status=arguments.status, kind=arguments.kind, offset=arguments.offset, limit=arguments.limit
    )
    if arguments.json:
        return _print_json(page)
    for run in page["items"]:
        progress = run.get("progress") or {}
        counts = f"{progress.get('done', 0)}/{progress.get('total', 0)}" if progress.get("total") else ""
        print(f"{run['id']:>6}  {run['status']:<10} {run['kind']:<16} {counts:>9}  {run['name'] or '—'}")
    shown_to = arguments.offset + len(page["items"])
    print(
        f"{len(page['items'])} of {page['count']} runs shown"
        + (f" (--offset {shown_to} for more)" if shown_to < page["count"] else ""),
        file=sys.stderr,
    )
    return 0


def _runs_show(client: RefineryClient, arguments: argparse.Namespace) -> int:
    return _print_run(client.runs.get(arguments.run_id), arguments)


def _runs_cancel(client: RefineryClient, arguments: argparse.Namespace) -> int:
    return _print_run(client.runs.cancel(arguments.run_id), arguments)


def _runs_resume(client: RefineryClient, arguments: argparse.Namespace) -> int:
    return _print_run(client.runs.resume(arguments.run_id), arguments)


def _runs_wait(client: RefineryClient, arguments: argparse.Namespace) -> int:
    return _wait(client, arguments.run_id, arguments)


def _runs_log(client: RefineryClient, arguments: argparse.Namespace) -> int:
    for line in client.runs.log(arguments.run_id, tail=arguments.tail):
        print(line)
    return 0


def _artifacts_list(client: RefineryClient, arguments: argparse.Namespace) -> int:
    page = client.artifacts.list(run=arguments.run, kind=arguments.kind, offset=arguments.offset, limit=arguments.limit)
    if arguments.json:
        return _print_json(page)
    for artifact in page["items"]:
        formats = ",".join(artifact.get("formats", []))
        print(
            f"{artifact['id']:>6}  {artifact['kind']:<14} {artifact['row_count']:>8} rows  {formats:<14} {artifact['name']}"
        )
    return 0


def _artifacts_rows(client: RefineryClient, arguments: argparse.Namespace) -> int:
    for row in client.artifacts.rows(arguments.artifact_id, offset=arguments.offset, limit=arguments.limit)["items"]:
        print(json.dumps(row, ensure_ascii=False))
    return 0


def _artifacts_download(client: RefineryClient, arguments: argparse.Namespace) -> int:
    path = client.artifacts.download(arguments.artifact_id, arguments.output, file_format=arguments.file_format)
    print(f"Saved {path} ({path.stat().st_size:,} bytes).", file=sys.stderr)
    return 0


def _reader(group: str, operation: str) -> Callable[[RefineryClient, argparse.Namespace], int]:
    def read(client: RefineryClient, arguments: argparse.Namespace) -> int:
        resource = getattr(client, group.replace("-", "_"))
        if operation == "list":
            page = resource.list(offset=arguments.offset, limit=arguments.limit)
            if arguments.json:
                return _print_json(page)
            for item in page["items"]:
                print(f"{item.get('id', ''):>6}  {item.get('name') or item.get('status') or ''}")
            return 0
        method = resource.get if operation == "show" else getattr(resource, operation)
        return _print_json(method(arguments.object_id))

    return read


def _uploader(group: str) -> Callable[[RefineryClient, argparse.Namespace], int]:
    def upload(client: RefineryClient, arguments: argparse.Namespace) -> int:
        for file in arguments.files:
            if not Path(file).is_file():
                raise UsageError(f"{file}: no such file")
        resource = getattr(client, group.replace("-", "_"))
        fields = {"description": arguments.description, **parse_assignments(arguments.assignments)}
        created = resource.upload(*arguments.files, name=arguments.name, **fields)
        print(f"Uploaded {group} #{created['id']} {created.get('name', '')}", file=sys.stderr)
        return _print_json(created)

    return upload


def _print_json(value: Any) -> int:
    print(json.dumps(value, indent=2, ensure_ascii=False))
    return 0


def _print_run(run: Run, arguments: argparse.Namespace) -> int:
    if getattr(arguments, "json", False):
        return _print_json(run)
    progress = run.get("progress") or {}
    lines = [
        f"Run #{run['id']} {run.get('name') or ''}".rstrip(),
        f"  kind:     {run['kind']} ({run.get('kind_label', '')})",
        f"  status:   {run['status']}" + (f" · {run['stage']}" if run.get("stage") else ""),
        f"  progress: {progress.get('done', 0)}/{progress.get('total', 0)}",
    ]
    if run.get("error"):
        lines.append(f"  error:    {run['error']}")
    for artifact in run.get("artifacts") or []:
        lines.append(
            f"  artifact: #{artifact['id']} {artifact['name']} ({artifact['kind']}, {artifact['row_count']} rows)"
        )
    for model in run.get("models") or []:
        lines.append(f"  model:    #{model['id']} {model['name']}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
