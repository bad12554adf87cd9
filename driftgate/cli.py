"""The ``driftgate`` command line: run, check, validate, serve.

Exit codes (the same for every command, so CI can tell outcomes apart):

==  =====================================================================
0   every objective passed (warnings allowed), or the files are valid
1   at least one objective failed
2   usage or configuration error: a bad flag, scenario, SLA file or URL
3   inconclusive: some objective could not be measured (no data is never a pass)
4   the run itself failed: a child process died, a port was taken, Prometheus is missing
130 interrupted (Ctrl-C or SIGTERM); the run folder keeps what was measured
==  =====================================================================

Heavy modules are imported inside each command so ``driftgate --help`` stays fast.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from sla.verdicts import EXIT_USAGE

EXIT_RUN_ERROR = 4
# The shell's convention for a command stopped by Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130
# The demo scenario ships with the repository; found from here, not the working directory.
DEFAULT_SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "drift-sudden.yaml"

app = typer.Typer(
    name="driftgate",
    help="Prove that an ML model service's silent failures get caught.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
error_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int) -> typer.Exit:
    error_console.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, ``kill``) stops a run the way Ctrl-C does: cleanly."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


@app.command()
def run(
    scenario: Annotated[
        Path | None,
        typer.Argument(help="scenario file (default: scenarios/drift-sudden.yaml, the demo)"),
    ] = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            help="use this running Prometheus instead of starting one (it must scrape "
            "the target every second and load the rules in prometheus/rules/)"
        ),
    ] = None,
    prometheus_binary: Annotated[
        str | None, typer.Option(help="the prometheus binary to start (default: on PATH)")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=0, max=16, help="Locust worker processes (0: one process)")
    ] = 0,
    runs_dir: Annotated[Path, typer.Option(help="where run folders are created")] = Path("runs"),
    service_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="port for the reference service")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs")] = False,
) -> None:
    """Run a scenario end to end: service, Prometheus, Locust, the gate, and a report."""
    _configure_logging(verbose)
    from driftgate.errors import DriftgateError, RunError
    from driftgate.run import RunOptions, run_scenario
    from sla.errors import SlaError
    from target_service.errors import ConfigError

    options = RunOptions(
        scenario_path=scenario or DEFAULT_SCENARIO,
        runs_root=runs_dir,
        prometheus_url=prometheus_url,
        prometheus_binary=prometheus_binary,
        locust_workers=workers,
        service_port=service_port,
    )
    try:
        with _sigterm_as_interrupt():
            code = run_scenario(options, console)
    except KeyboardInterrupt:
        raise _fail(
            "interrupted; every process the run started is stopped", EXIT_INTERRUPTED
        ) from None
    except RunError as error:
        raise _fail(str(error), EXIT_RUN_ERROR) from None
    except (DriftgateError, SlaError, ConfigError) as error:
        raise _fail(str(error), EXIT_USAGE) from None
    raise typer.Exit(code)


@app.command()
def check(
    sla: Annotated[Path, typer.Option(help="SLA file with the objectives")],
    prometheus_url: Annotated[
        str | None, typer.Option(help="Prometheus base URL (or the SLA file's prometheus.url)")
    ] = None,
    manifest: Annotated[
        Path | None, typer.Option(help="run manifest whose phases name the windows")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="report.json of an earlier run, for baseline objectives")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="folder for report.json, junit.xml and report.md")
    ] = None,
    bearer_token: Annotated[
        str | None, typer.Option(envvar="PROMETHEUS_TOKEN", help="bearer token", show_default=False)
    ] = None,
    basic_auth: Annotated[
        str | None,
        typer.Option(envvar="PROMETHEUS_BASIC_AUTH", help="user:password", show_default=False),
    ] = None,
    ca_file: Annotated[Path | None, typer.Option(help="CA bundle for TLS")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds per query")] = None,
    retries: Annotated[int | None, typer.Option(help="retries per query")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs")] = False,
) -> None:
    """Gate a running service: evaluate an SLA file against any Prometheus."""
    _configure_logging(verbose)
    from sla.check import check_command

    code = check_command(
        sla,
        prometheus_url=prometheus_url,
        manifest_path=manifest,
        baseline_path=baseline,
        out_dir=out,
        bearer_token=bearer_token,
        basic_auth=basic_auth,
        ca_file=ca_file,
        timeout_s=timeout,
        retries=retries,
        console=console,
        error_console=error_console,
    )
    raise typer.Exit(code)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="scenario or SLA files")],
) -> None:
    """Check scenario and SLA files without running anything."""
    from driftgate.validate import validate_file

    problems = 0
    for path in files:
        message, ok = validate_file(path)
        if ok:
            console.print(f"ok: {message}", markup=False, highlight=False)
        else:
            problems += 1
            error_console.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(EXIT_USAGE if problems else 0)


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option(help="YAML settings file")] = None,
    host: Annotated[str | None, typer.Option(help="address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="0 picks a free port")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=32, help="uvicorn workers")] = None,
) -> None:
    """Run the reference model service alone."""
    from target_service.__main__ import main as serve_main

    argv: list[str] = []
    for flag, value in (
        ("--config", config),
        ("--host", host),
        ("--port", port),
        ("--workers", workers),
    ):
        if value is not None:
            argv += [flag, str(value)]
    raise typer.Exit(serve_main(argv))
