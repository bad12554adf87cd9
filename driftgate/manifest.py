"""The run manifest: what a load run did, and when, written beside the run's other outputs.

The checker evaluates objectives over the exact phase windows recorded here, so every time
is a UTC epoch in seconds (float), taken from the same clock the load generator switches
phases by.

Client-side statistics are Locust's. Locust stores response times rounded (to 2 significant
digits above 100 ms, to the millisecond below), so its percentiles are approximate; they
are shown beside Prometheus's server-side figures as a cross-check and never gate anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from driftgate.errors import ManifestError

MANIFEST_FILENAME = "manifest.json"

CLIENT_PERCENTILES_NOTE = (
    "Locust rounds stored response times (to 2 significant digits above 100 ms), so these "
    "client-side percentiles are approximate; the gate uses Prometheus's server-side histograms."
)


class PhaseRecord(BaseModel):
    """One load phase as it actually ran."""

    model_config = ConfigDict(extra="forbid")

    name: str
    start_s: float = Field(description="UTC epoch seconds when the phase began")
    end_s: float = Field(description="UTC epoch seconds when the phase ended")
    users: int
    spawn_rate: float
    traffic: dict[str, Any] = Field(
        description='the traffic spec applied: {"kind": "normal"} or the drift spec'
    )

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class RequestStats(BaseModel):
    """Locust's client-side statistics for one request name (a route, optionally per version)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    method: str
    model_version: str | None = None
    requests: int
    failures: int
    requests_per_s: float
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None


class ClientStats(BaseModel):
    """Everything Locust measured on the client side."""

    model_config = ConfigDict(extra="forbid")

    note: str = CLIENT_PERCENTILES_NOTE
    total_requests: int
    total_failures: int
    requests: list[RequestStats]
    errors: dict[str, int] = Field(default_factory=dict, description="failure message -> count")


class RunManifest(BaseModel):
    """A load run: scenario, target, phases with exact times, and client-side statistics."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    scenario: str
    scenario_file: str | None = None
    target_url: str
    started_s: float
    ended_s: float
    locust_workers: int = 0
    phases: list[PhaseRecord]
    client_stats: ClientStats | None = None
    completed: bool = Field(
        True, description="false when the run was interrupted; phases then end at the stop"
    )

    def phase(self, name: str) -> PhaseRecord:
        """The phase called ``name``; a ManifestError lists the known names otherwise."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        known = ", ".join(p.name for p in self.phases) or "(none)"
        raise ManifestError(f"run manifest has no phase {name!r}; phases: {known}")

    def save(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> RunManifest:
        try:
            return cls.model_validate_json(path.read_text())
        except OSError as error:
            raise ManifestError(f"{path}: cannot read the run manifest: {error.strerror}") from None
        except UnicodeDecodeError:
            raise ManifestError(f"{path}: not a text file (expected a JSON run manifest)") from None
        except ValidationError as error:
            raise ManifestError(
                f"{path}: not a valid run manifest: {_first_problem(error)}"
            ) from None


def _first_problem(error: ValidationError) -> str:
    """The first problem as ``field.path: message, got value`` (plus how many more)."""
    first = error.errors()[0]
    path = ".".join(str(part) for part in first["loc"]) or "(top level)"
    value = first.get("input")
    shown = "" if isinstance(value, dict | list) else f", got {value!r}"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{path}: {first['msg']}{shown}{suffix}"
