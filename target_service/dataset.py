"""The reference dataset: the RAND Health Insurance Experiment, as bundled with statsmodels.

The service predicts whether a person visited a doctor at least once in a year
(``visited_doctor``) from their insurance plan and health. The data ships inside the
installed ``statsmodels`` package (20,190 person-years), so nothing is downloaded at run time.

Features, renamed from the statsmodels columns so that a request reads on its own:

============================  ============  ===========================================
feature                       kind          source column and meaning
============================  ============  ===========================================
participation_incentive_log   numeric       ``lpi``: ln(max(1, annual incentive payment))
max_deductible_log            numeric       ``fmde``: ln of the maximum dollar expenditure
physical_limitation           numeric       ``physlm``: 1 if physically limited (imputed
                                            values in between exist)
chronic_diseases              numeric       ``disea``: number of chronic diseases
coinsurance_pct               categorical   ``lncoins`` turned back into the plan's rate
deductible_plan               categorical   ``idp``: individual deductible plan, yes/no
self_rated_health             categorical   ``hlthg``/``hlthf``/``hlthp``, excellent if none
============================  ============  ===========================================

The split into training (the drift monitor's reference) and held-out rows (what the load
generator replays, with true labels) is fixed by a seed, so every process agrees on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd

TARGET = "visited_doctor"
CLASSES: tuple[str, ...] = ("no_visit", "visit")
SPLIT_SEED = 20260101
HOLDOUT_SHARE = 0.25


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature: its kind, and the values a request may carry.

    ``valid_min``/``valid_max`` bound what the API accepts (wide, physically possible
    values); ``observed_min``/``observed_max`` are what the training data holds. Values in
    between are accepted, so that drifted traffic reaches the model and the drift monitor.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    description: str
    valid_min: float | None = None
    valid_max: float | None = None
    observed_min: float | None = None
    observed_max: float | None = None
    categories: tuple[str, ...] = ()


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "participation_incentive_log",
        "numeric",
        "ln(max(1, annual participation incentive payment in dollars))",
        valid_min=0.0,
        valid_max=20.0,
        observed_min=0.0,
        observed_max=7.17,
    ),
    FeatureSpec(
        "max_deductible_log",
        "numeric",
        "ln of the plan's maximum dollar expenditure; 0 on individual deductible plans",
        valid_min=0.0,
        valid_max=20.0,
        observed_min=0.0,
        observed_max=8.30,
    ),
    FeatureSpec(
        "physical_limitation",
        "numeric",
        "1 if the person has a physical limitation, 0 if not (imputed values in between)",
        valid_min=-5.0,
        valid_max=5.0,
        observed_min=0.0,
        observed_max=1.0,
    ),
    FeatureSpec(
        "chronic_diseases",
        "numeric",
        "number of chronic diseases (an index; fractional values occur)",
        valid_min=0.0,
        valid_max=200.0,
        observed_min=0.0,
        observed_max=58.6,
    ),
    FeatureSpec(
        "coinsurance_pct",
        "categorical",
        "share of the bill the insured pays, in percent",
        categories=("0", "25", "50", "95", "100"),
    ),
    FeatureSpec(
        "deductible_plan",
        "categorical",
        "whether the plan has an individual deductible",
        categories=("no", "yes"),
    ),
    FeatureSpec(
        "self_rated_health",
        "categorical",
        "the person's own rating of their health",
        categories=("excellent", "good", "fair", "poor"),
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "numeric")
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "categorical")
FEATURES_BY_NAME: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}


@dataclass(frozen=True)
class DatasetSplit:
    """Training rows (the model's and the drift monitor's reference) and held-out rows."""

    train: pd.DataFrame
    holdout: pd.DataFrame


def _coinsurance_category(log_coinsurance: pd.Series) -> pd.Series:
    # The source stores ln(rate + 1); rounding recovers the plan's whole-percent rate.
    rate_pct = np.rint(np.expm1(log_coinsurance.to_numpy())).astype(int)
    return pd.Series(rate_pct.astype(str), index=log_coinsurance.index)


def _health_category(raw: pd.DataFrame) -> pd.Series:
    health = np.select(
        [raw["hlthp"] == 1, raw["hlthf"] == 1, raw["hlthg"] == 1],
        ["poor", "fair", "good"],
        default="excellent",
    )
    return pd.Series(health, index=raw.index)


@cache
def load_frame() -> pd.DataFrame:
    """All 20,190 rows with the renamed features and the ``visited_doctor`` label."""
    from statsmodels.datasets import randhie

    raw = randhie.load_pandas().data
    frame = pd.DataFrame(
        {
            "participation_incentive_log": raw["lpi"].astype(float),
            "max_deductible_log": raw["fmde"].astype(float),
            "physical_limitation": raw["physlm"].astype(float),
            "chronic_diseases": raw["disea"].astype(float),
            "coinsurance_pct": _coinsurance_category(raw["lncoins"]),
            "deductible_plan": np.where(raw["idp"] == 1, "yes", "no"),
            "self_rated_health": _health_category(raw),
            TARGET: np.where(raw["mdvis"] > 0, CLASSES[1], CLASSES[0]),
        }
    )
    return frame


@cache
def load_split() -> DatasetSplit:
    """The fixed train/holdout split (seeded, stratified by nothing: a plain random split)."""
    frame = load_frame()
    rng = np.random.default_rng(SPLIT_SEED)
    is_holdout = rng.random(len(frame)) < HOLDOUT_SHARE
    return DatasetSplit(
        train=frame.loc[~is_holdout].reset_index(drop=True),
        holdout=frame.loc[is_holdout].reset_index(drop=True),
    )


def example_record() -> dict[str, float | str]:
    """A valid request record: the first held-out row, without its label."""
    row = load_split().holdout.iloc[0]
    return {
        spec.name: str(row[spec.name]) if spec.kind == "categorical" else float(row[spec.name])
        for spec in FEATURES
    }
