"""Start the reference service: ``python -m target_service [--config f.yaml] [--port P] ...``.

Trains or loads the cached models once in this process, binds the socket (``--port 0``
picks a free port), starts ``settings.workers`` uvicorn workers, and logs one line
``ready url=http://HOST:PORT workers=N`` once ``/readyz`` answers. A bad setting prints one
line naming the field and value and exits with code 2.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

from target_service.app import SERVICE_PID_ENV, SETTINGS_ENV, SHARED_DIR_ENV
from target_service.config import ServiceSettings, load_settings
from target_service.errors import ConfigError, ModelError
from target_service.instrument import MULTIPROCESS_ENV
from target_service.models import load_models

logger = logging.getLogger("target_service")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2
READY_POLL_S = 0.1
READY_TIMEOUT_S = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m target_service", description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--host", help="address to bind (default from settings: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind; 0 picks a free one")
    parser.add_argument("--workers", type=int, help="uvicorn worker processes")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    overrides = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    try:
        settings = load_settings(args.config, **overrides)
        _refuse_unusable_address(settings.host, settings.port)
        load_models(settings.resolved_cache_dir())
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except ModelError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILURE

    shared_dir = Path(tempfile.mkdtemp(prefix="driftgate-service-"))
    try:
        return serve(settings, shared_dir, args.log_level)
    finally:
        shutil.rmtree(shared_dir, ignore_errors=True)


def _refuse_unusable_address(host: str, port: int) -> None:
    """ConfigError if ``host:port`` cannot be bound now, before any slow set-up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option uvicorn sets, so a port in TIME_WAIT is not mistaken for a busy one.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(
                f"cannot listen on {host}:{port}: {reason}; choose another --host or --port "
                "(--port 0 picks a free one)"
            ) from None


def serve(settings: ServiceSettings, shared_dir: Path, log_level: str) -> int:
    """Run uvicorn until it is stopped; the workers read settings from the environment."""
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    os.environ[SHARED_DIR_ENV] = str(shared_dir / "monitor")
    # Workers report CPU and memory of this process and all below it: the whole service.
    os.environ[SERVICE_PID_ENV] = str(os.getpid())
    if settings.workers > 1:
        # Fresh per run, so no counts of an earlier run leak in; set before workers import
        # prometheus_client, which picks its value store on import.
        metrics_dir = shared_dir / "prometheus"
        metrics_dir.mkdir()
        os.environ[MULTIPROCESS_ENV] = str(metrics_dir)

    config = uvicorn.Config(
        "target_service.app:create_worker_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=log_level,
        log_config=_log_config(log_level),
        access_log=False,
    )
    sock = config.bind_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{_url_host(host)}:{port}"
    watcher = threading.Thread(
        target=_log_when_ready, args=(url, settings.workers), daemon=True, name="ready-watch"
    )
    watcher.start()

    if settings.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
    return EXIT_OK


def _log_config(log_level: str) -> dict[str, Any]:
    # Uvicorn configures logging in every worker; add our loggers so workers' lines show too.
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["target_service"] = {
        "handlers": ["default"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _log_when_ready(url: str, workers: int) -> None:
    # Polls our own freshly bound socket only; gives up after READY_TIMEOUT_S.
    deadline = time.monotonic() + READY_TIMEOUT_S
    probe_url = url.replace("0.0.0.0", "127.0.0.1").replace("[::]", "[::1]") + "/readyz"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(probe_url, timeout=1.0) as response:
                if response.status == 200:
                    logger.info("ready url=%s workers=%s", url, workers)
                    return
        except OSError as error:
            # Expected while the workers start: connection refused, or 503 while loading.
            logger.debug("readiness probe failed: %s", error)
        time.sleep(READY_POLL_S)
    logger.warning("not ready after %ss url=%s; check the worker logs above", READY_TIMEOUT_S, url)


if __name__ == "__main__":
    sys.exit(main())
