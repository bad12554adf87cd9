"""Scenario files: one YAML file per experiment, validated before any load is sent.

A scenario names the target (the bundled reference service with its settings, or the URL
of any service speaking the same API), the load phases in order with the traffic each one
sends (normal, or one of the drift kinds below), the share and delay of the ground-truth
feedback, and the objectives the SLA checker evaluates. ``docs/scenarios.md`` shows the
syntax; ``scenarios/scenario.schema.json`` is generated from the models here
(``python -m driftgate.scenario --write-schema``) so that editors can complete the files.

A bad file raises :class:`~driftgate.errors.ScenarioError` with one line naming the file,
the field path and what was expected::

    scenarios/x.yaml: load.phases[2].duration: expected a duration like 30s, got "3O s"

Drift kinds (``traffic.kind``) and what ``size`` means for each:

=================  ==========================================================  ============
kind               what changes                                                size
=================  ==========================================================  ============
mean_shift         numeric features move by ``size`` reference standard        >= 0
                   deviations (``direction: up|down``)
scale              numeric features spread ``size`` times as wide around the    > 0
                   reference mean
gradual            a mean shift ramping from 0 to ``size`` over the phase       >= 0
recurring          a mean shift of ``size``, on for ``on``, off for ``off``     >= 0
category_shift     a share ``size`` of rows get ``category`` in categorical     0..1
                   features
prior_shift        rows resampled so that a share ``size`` has ``label``        0..1
concept            inputs unchanged; a share ``size`` of the rows where a        0..1
                   feature is above its reference ``above_quantile`` get the
                   other true label (only accuracy can reveal it)
=================  ==========================================================  ============

Features are named (``features: [chronic_diseases]``) or drawn at random with a seed
(``features: {random: 2, seed: 7}``) from the features of the right kind.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from driftgate.durations import DurationS, format_duration
from driftgate.errors import ScenarioError
from sla.objectives import OBJECTIVE_KINDS, Objective, check_objective_set
from target_service.config import ServiceSettings
from target_service.dataset import CATEGORICAL_FEATURES, NUMERIC_FEATURES

SCHEMA_FILENAME = "scenario.schema.json"
SCHEMA_ID = "https://driftgate.invalid/scenario.schema.json"
MAX_PHASES = 50
MAX_PHASE_DURATION_S = 6 * 3600.0
MAX_USERS = 1000

FeatureKind = Literal["numeric", "categorical"]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class StrictModel(BaseModel):
    """A block of a scenario file that rejects unknown keys, so a typo is an error."""

    model_config = ConfigDict(extra="forbid")


class ScenarioServiceSettings(ServiceSettings):
    """The reference service's settings as written in a scenario: the file only, no environment.

    The same fields and checks as :class:`target_service.config.ServiceSettings`; reading
    ``DRIFTGATE_*`` variables here would make a scenario mean different things on
    different machines.
    """

    model_config = ServiceSettings.model_config | {"title": "ServiceSettings"}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @model_validator(mode="after")
    def _address_chosen_by_the_run(self) -> ScenarioServiceSettings:
        # driftgate run binds the bundled service to 127.0.0.1 on a free port (or
        # --service-port); a host or port here would be silently overridden.
        for field_name in ("host", "port"):
            if field_name in self.model_fields_set:
                raise ValueError(
                    f"{field_name}: set by driftgate run (127.0.0.1, a free port or "
                    f"--service-port), not by the scenario; remove it"
                )
        return self


class RandomFeatures(StrictModel):
    """``random`` features of the right kind, drawn with ``seed`` (the same on every process)."""

    random: int = Field(ge=1, description="how many features to draw")
    seed: int = Field(0, description="seed of the draw")


FeatureSelection = list[str] | RandomFeatures


def _pick_features(selection: FeatureSelection, kind: FeatureKind) -> tuple[str, ...]:
    pool = NUMERIC_FEATURES if kind == "numeric" else CATEGORICAL_FEATURES
    if isinstance(selection, RandomFeatures):
        rng = np.random.default_rng(selection.seed)
        picked = rng.choice(len(pool), size=selection.random, replace=False)
        return tuple(pool[index] for index in sorted(picked))
    return tuple(selection)


def _check_features(selection: FeatureSelection, kind: FeatureKind) -> FeatureSelection:
    pool = NUMERIC_FEATURES if kind == "numeric" else CATEGORICAL_FEATURES
    other = CATEGORICAL_FEATURES if kind == "numeric" else NUMERIC_FEATURES
    if isinstance(selection, RandomFeatures):
        if selection.random > len(pool):
            raise ValueError(
                f"random: {selection.random} is more than the {len(pool)} {kind} features "
                f"({', '.join(pool)})"
            )
        return selection

    if not selection:
        raise ValueError(f"name at least one {kind} feature; {kind} features: {', '.join(pool)}")
    for name in selection:
        if name in other:
            raise ValueError(
                f"{name!r} is a {'categorical' if kind == 'numeric' else 'numeric'} feature; "
                f"this drift needs {kind} features: {', '.join(pool)}"
            )
        if name not in pool:
            raise ValueError(f"unknown feature {name!r}; {kind} features: {', '.join(pool)}")
    if len(set(selection)) != len(selection):
        raise ValueError(f"a feature is named twice in {selection}")
    return selection


class DriftBase(StrictModel):
    """What every drift spec has: the features it touches (if any)."""

    feature_kind: ClassVar[FeatureKind | None] = None

    def feature_names(self) -> tuple[str, ...]:
        """The features this drift touches, with a random selection resolved."""
        selection: FeatureSelection | None = getattr(self, "features", None)
        if selection is None or self.feature_kind is None:
            return ()
        return _pick_features(selection, self.feature_kind)

    def describe(self) -> dict[str, Any]:
        """The spec as recorded in the run manifest, with random features resolved."""
        described = self.model_dump(mode="json")
        if self.feature_names():
            described["resolved_features"] = list(self.feature_names())
        return described


class NumericDrift(DriftBase):
    """A drift of numeric features."""

    feature_kind: ClassVar[FeatureKind | None] = "numeric"

    features: FeatureSelection = Field(description="numeric feature names, or {random: k, seed: s}")

    @field_validator("features")
    @classmethod
    def _numeric_features(cls, value: FeatureSelection) -> FeatureSelection:
        return _check_features(value, "numeric")


class NormalTraffic(DriftBase):
    """Held-out rows as they are."""

    kind: Literal["normal"] = "normal"


class MeanShift(NumericDrift):
    """Numeric features move by ``size`` reference standard deviations."""

    kind: Literal["mean_shift"]
    size: float = Field(ge=0.0, le=100.0, description="shift in reference standard deviations")
    direction: Literal["up", "down"] = "up"


class ScaleChange(NumericDrift):
    """Numeric features spread ``size`` times as wide around the reference mean."""

    kind: Literal["scale"]
    size: float = Field(gt=0.0, le=100.0, description="factor on the spread around the mean")


class GradualDrift(NumericDrift):
    """A mean shift ramping linearly from 0 at the phase start to ``size`` at its end."""

    kind: Literal["gradual"]
    size: float = Field(ge=0.0, le=100.0, description="shift reached at the phase end, in SDs")
    direction: Literal["up", "down"] = "up"


class RecurringDrift(NumericDrift):
    """A mean shift of ``size`` SDs that is on for ``on``, then off for ``off``, repeatedly."""

    kind: Literal["recurring"]
    size: float = Field(ge=0.0, le=100.0, description="shift while on, in SDs")
    direction: Literal["up", "down"] = "up"
    on: DurationS = Field(description="how long the drift is on in each period (starts on)")
    off: DurationS = Field(description="how long the drift is off in each period")

    @model_validator(mode="after")
    def _positive_period(self) -> RecurringDrift:
        if self.on <= 0 or self.off <= 0:
            raise ValueError(
                f"on and off must both be > 0, got on={format_duration(self.on)} "
                f"off={format_duration(self.off)}"
            )
        return self


class CategoryShift(DriftBase):
    """A share ``size`` of rows get ``category`` in each named categorical feature.

    An unseen category is allowed: the service accepts it and its drift monitor counts it
    as missing/unseen (``feature_missing_share``).
    """

    feature_kind: ClassVar[FeatureKind | None] = "categorical"

    kind: Literal["category_shift"]
    size: Share = Field(description="share of rows moved to the category")
    category: str = Field(min_length=1, max_length=64, description="the category rows move to")
    features: FeatureSelection = Field(
        description="categorical feature names, or {random: k, seed: s}"
    )

    @field_validator("features")
    @classmethod
    def _categorical_features(cls, value: FeatureSelection) -> FeatureSelection:
        return _check_features(value, "categorical")


class PriorShift(DriftBase):
    """Rows resampled by their true label so that a share ``size`` carries ``label``."""

    kind: Literal["prior_shift"]
    size: Share = Field(description="share of rows whose true label is `label`")
    label: Literal["no_visit", "visit"] = Field(description="the class whose share is set")


class ConceptDrift(NumericDrift):
    """Inputs unchanged; true labels flipped for a share ``size`` of a region of inputs.

    The region is the rows where any of ``features`` is above its reference quantile
    ``above_quantile``. Only accuracy (from feedback) can reveal this drift.
    """

    kind: Literal["concept"]
    size: Share = Field(1.0, description="share of the region's rows whose label is flipped")
    above_quantile: float = Field(
        0.5, gt=0.0, lt=1.0, description="the region: feature above this reference quantile"
    )


DriftSpec = Annotated[
    NormalTraffic
    | MeanShift
    | ScaleChange
    | GradualDrift
    | RecurringDrift
    | CategoryShift
    | PriorShift
    | ConceptDrift,
    Field(discriminator="kind"),
]
DRIFT_KINDS: tuple[str, ...] = (
    "normal",
    "mean_shift",
    "scale",
    "gradual",
    "recurring",
    "category_shift",
    "prior_shift",
    "concept",
)


_DRIFT_MODELS: dict[str, type[DriftBase]] = {
    "normal": NormalTraffic,
    "mean_shift": MeanShift,
    "scale": ScaleChange,
    "gradual": GradualDrift,
    "recurring": RecurringDrift,
    "category_shift": CategoryShift,
    "prior_shift": PriorShift,
    "concept": ConceptDrift,
}


def _traffic_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        if value != "normal":
            raise ValueError(
                f'expected "normal" or a mapping with kind: one of {", ".join(DRIFT_KINDS)}, '
                f"got {json.dumps(value)}"
            )
        return {"kind": "normal"}
    return value


Traffic = Annotated[
    DriftSpec,
    BeforeValidator(_traffic_shorthand, json_schema_input_type=Literal["normal"] | DriftSpec),
]


class Phase(StrictModel):
    """One load phase: how long, how many users, and what traffic they send."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    duration: DurationS = Field(description="how long the phase lasts: 30s, 2m, 1m30s")
    users: int = Field(ge=1, le=MAX_USERS, description="concurrent Locust users")
    spawn_rate: float = Field(gt=0.0, le=1000.0, description="users started per second")
    traffic: Traffic = Field(
        default_factory=NormalTraffic, description='"normal", or a drift spec with a kind'
    )

    @field_validator("duration")
    @classmethod
    def _positive_duration(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(
                f"expected a phase duration > 0 like 30s, got {format_duration(value)}"
            )
        if value > MAX_PHASE_DURATION_S:
            raise ValueError(
                f"expected a phase of at most {format_duration(MAX_PHASE_DURATION_S)}, "
                f"got {format_duration(value)}"
            )
        return value


class WaitTime(StrictModel):
    """Each user waits a uniform random time in [min, max] between iterations."""

    min: DurationS = 0.05
    max: DurationS = 0.15

    @model_validator(mode="after")
    def _ordered(self) -> WaitTime:
        if self.max < self.min:
            raise ValueError(
                f"max must be >= min, got min={format_duration(self.min)} "
                f"max={format_duration(self.max)}"
            )
        return self


class Load(StrictModel):
    """The load phases, run one after the other, and how users pace themselves."""

    wait_time: WaitTime = Field(default_factory=WaitTime)
    model_version_weights: dict[str, float] | None = Field(
        None,
        description=(
            "if set, each /predict carries X-Model-Version drawn with these weights "
            "(forces versions on any target); if unset, the service routes"
        ),
    )
    phases: list[Phase] = Field(min_length=1, max_length=MAX_PHASES)

    @field_validator("phases")
    @classmethod
    def _unique_names(cls, phases: list[Phase]) -> list[Phase]:
        names = [phase.name for phase in phases]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(
                    f"phase names must be unique (the manifest finds phases by name), "
                    f"got {name!r} {names.count(name)} times"
                )
        return phases

    @field_validator("model_version_weights")
    @classmethod
    def _weights(cls, weights: dict[str, float] | None) -> dict[str, float] | None:
        if weights is None:
            return None
        for version, weight in weights.items():
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", version):
                raise ValueError(f"expected a model version name like v1, got {version!r}")
            if weight < 0:
                raise ValueError(f"weights must be >= 0, got {version}: {weight}")
        if sum(weights.values()) <= 0:
            raise ValueError(f"at least one weight must be > 0, got {weights}")
        return weights

    @property
    def duration_s(self) -> float:
        return sum(phase.duration for phase in self.phases)


class Feedback(StrictModel):
    """Ground truth sent back after predictions, so that the service can measure accuracy."""

    share: Share = Field(0.5, description="share of predictions followed by feedback")
    delay: DurationS = Field(1.0, description="how long after the prediction feedback is sent")
    max_pending: int = Field(
        1000, ge=1, le=100_000, description="per user; the oldest are dropped beyond this"
    )


class Target(StrictModel):
    """Exactly one of: the bundled reference service with its settings, or a URL."""

    service: ScenarioServiceSettings | None = Field(
        None, description="start the bundled reference service with these settings"
    )
    url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="any service speaking the reference API, e.g. http://127.0.0.1:8000",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Target:
        if (self.service is None) == (self.url is None):
            raise ValueError("expected exactly one of service (the bundled service) or url")
        return self


# The objective models accept shorthands ("250ms", "phase:drift") that their generated
# schema does not show, so editors get the outline here and the checker's models validate.
ObjectiveList = Annotated[
    list[Objective],
    WithJsonSchema(
        {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "kind"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"enum": list(OBJECTIVE_KINDS)},
                    "severity": {"enum": ["fail", "warn"]},
                },
            },
            "description": "the SLA checker's objectives (see docs/sla.md)",
        }
    ),
]


class Scenario(StrictModel):
    """One experiment: target, load phases with their traffic, feedback, and objectives."""

    model_config = ConfigDict(extra="forbid", title="driftgate scenario")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$", description="used in run folders")
    description: str = Field(min_length=1)
    seed: int = Field(0, description="seeds sampling and drift; runs with one seed agree")
    target: Target
    load: Load
    feedback: Feedback = Field(default_factory=Feedback)
    objectives: ObjectiveList = Field(
        default_factory=list, description="the SLA checker's objectives (see docs/sla.md)"
    )

    _source_path: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _objectives_name_known_phases(self) -> Scenario:
        check_objective_set(self.objectives)
        names = [phase.name for phase in self.load.phases]
        for index, objective in enumerate(self.objectives):
            for field, phase in _phases_named_by(objective):
                if phase not in names:
                    raise ValueError(
                        f"objectives[{index}].{field}: no phase {phase!r} in load.phases; "
                        f"phases: {', '.join(names)}"
                    )
        return self

    @property
    def source_path(self) -> Path | None:
        """The file this scenario was read from, if any."""
        return self._source_path

    @property
    def duration_s(self) -> float:
        return self.load.duration_s


def _phases_named_by(objective: Any) -> list[tuple[str, str]]:
    """``(field, phase name)`` for every phase an objective refers to."""
    named = []
    window = getattr(objective, "window", None)
    if window is not None and window.phase is not None:
        named.append(("window", window.phase))
    if isinstance(getattr(objective, "phase", None), str):
        named.append(("phase", objective.phase))
    for phase in getattr(objective, "phases", None) or []:
        named.append(("phases", phase))
    return named


def describe_error(error: ValidationError, source: str) -> str:
    """One line: the source, the field path (``load.phases[2].duration``), expected and got."""
    # A misspelt key is both "unknown" and "missing"; the unknown one explains the other.
    problems = sorted(error.errors(), key=lambda detail: detail["type"] != "extra_forbidden")
    first = problems[0]
    path = _field_path(first["loc"])
    message = _expected(first)
    value = first.get("input")
    if first["type"] == "union_tag_invalid":
        value = first.get("ctx", {}).get("tag")
    shown = ""
    if "got " not in message and not isinstance(value, dict | list):
        shown = f", got {_show(value)}"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    where = f"{source}: " if path == "(top level)" else f"{source}: {path}: "
    return f"{where}{message}{shown}{suffix}"


def _expected(detail: Any) -> str:
    kind = detail["type"]
    context = detail.get("ctx", {})
    if kind == "union_tag_invalid":
        # Two fields take a tagged kind: a phase's traffic and an objective.
        kinds = OBJECTIVE_KINDS if detail["loc"][0] == "objectives" else DRIFT_KINDS
        return f"expected kind: one of {', '.join(kinds)}"
    if kind == "extra_forbidden":
        known = _known_fields(detail["loc"][:-1])
        return f"unknown field; expected one of: {', '.join(known)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}
        bound = next(iter(context.values()))
        return f"expected a number {words.get(kind, '<')} {bound}"
    if kind == "missing":
        return "this field is required"
    return str(detail["msg"]).removeprefix("Value error, ")


def _known_fields(loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model at ``loc`` (for "unknown field" errors)."""
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int) or not hasattr(model, "model_fields"):
            continue
        if part in DRIFT_KINDS:
            model = _DRIFT_MODELS[part]
            continue
        field = model.model_fields.get(part)
        if field is None:
            continue
        model = _model_in(field.annotation)
    fields = getattr(model, "model_fields", {})
    return [name for name in fields if name != "kind"] or ["(none)"]


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


# pydantic names the branch of a union it tried in the error location; users never wrote it.
_UNION_BRANCHES = ("list[str]", "RandomFeatures", "function-before[_traffic_shorthand()]")


def _is_union_tag(previous: int | str | None, part: str) -> bool:
    if previous == "traffic" and part in DRIFT_KINDS:
        return True
    return part in _UNION_BRANCHES or (isinstance(previous, int) and part in OBJECTIVE_KINDS)


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for index, part in enumerate(loc):
        previous = loc[index - 1] if index else None
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _is_union_tag(previous, part):
            continue
        else:
            parts.append(f".{part}" if parts else str(part))
    return "".join(parts) or "(top level)"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    """Validate an already-parsed mapping; a ScenarioError names ``source`` and the field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping of scenario fields, got {_show(data)}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(describe_error(error, source)) from None


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file; every problem is a one-line ScenarioError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the scenario file: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not a text file (expected UTF-8 YAML)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f"line {where.line + 1}: " if where is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ScenarioError(f"{path}: {line}not valid YAML: {problem}") from None

    scenario = parse_scenario(data, str(path))
    scenario._source_path = path
    return scenario


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema of scenario files, for editors (yaml-language-server)."""
    schema = Scenario.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render_schema() -> str:
    return json.dumps(scenario_json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m driftgate.scenario --write-schema [PATH]``: regenerate the editors' schema.

    Checking files is ``driftgate validate``'s job; this entry point only writes the schema
    after the scenario model changed.
    """
    parser = argparse.ArgumentParser(prog="python -m driftgate.scenario")
    parser.add_argument(
        "--write-schema", type=Path, nargs="?", const=Path("scenarios"), required=True
    )
    options = parser.parse_args(argv)

    target = options.write_schema
    if target.is_dir():
        target = target / SCHEMA_FILENAME
    target.write_text(render_schema())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
