"""Child processes that must never outlive driftgate: start, watch, stop.

Every child runs in a session of its own, so that stopping it also stops anything it
started (uvicorn workers, Locust workers). ``stop`` sends SIGTERM to the whole group, waits,
then SIGKILLs what is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

STOP_GRACE_S = 10.0
# prctl(2) option: the signal a child receives when the process that started it dies.
PR_SET_PDEATHSIG = 1


def _signal_when_parent_dies(signum: signal.Signals) -> None:
    """Runs in the child before exec: ask Linux to send ``signum`` if driftgate itself dies.

    This covers the one exit no ``finally`` can: driftgate killed with SIGKILL. Elsewhere than
    Linux the call is unavailable and the child simply lacks this safety net.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if hasattr(libc, "prctl"):
        libc.prctl(PR_SET_PDEATHSIG, signum)


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    Another process can take it before the caller binds it; callers that start a server
    on it report a clear "port in use" error rather than retrying blindly.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers_ok(url: str, timeout_s: float = 1.0) -> bool:
    """Whether ``GET url`` answers 200 right now (a readiness probe)."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


class ChildProcess:
    """One child process with its output in a log file, stopped with its whole group."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        parent_death_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        """``parent_death_signal`` reaches the child if driftgate dies without stopping it:
        SIGTERM lets it save its work; SIGKILL suits a child that ignores SIGTERM."""
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._parent_death_signal = parent_death_signal
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._process = subprocess.Popen(
                self.command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
                preexec_fn=functools.partial(_signal_when_parent_dies, self._parent_death_signal),
            )
        logger.info("started name=%s pid=%s log=%s", self.name, self._process.pid, self.log_path)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """None while running (or never started); the exit code once it has ended."""
        return self._process.poll() if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the child's log, for an error message."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the process group, wait up to ``grace_s``, then SIGKILL it."""
        if self._process is None:
            return

        group_id = self._process.pid
        _signal_group(group_id, signal.SIGTERM)
        try:
            self._process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("name=%s did not stop in %.0fs; killing it", self.name, grace_s)
            _signal_group(group_id, signal.SIGKILL)
            self._process.wait(timeout=grace_s)

        # Children the leader left behind (e.g. workers) share its group; kill stragglers.
        _signal_group(group_id, signal.SIGKILL)
        logger.info("stopped name=%s exit_code=%s", self.name, self._process.returncode)


def _signal_group(group_id: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group_id, signum)
