"""The two model versions: training, the on-disk cache, and the fast per-request call.

``v1`` (champion) is a logistic regression, ``v2`` (challenger) a gradient boosting
ensemble of shallow trees, both trained on ``load_split().train``. They are trained once and cached
with joblib under ``settings.resolved_cache_dir()``; the cache file's name carries a key
made of a fingerprint of the training rows, ``MODEL_CODE_VERSION`` and the scikit-learn
version, so a change to any of them trains afresh.

Per request the service does not go through a pandas pipeline (about 0.5 ms a row): records
are turned into a numpy "raw row" (numeric values; category codes, -1 for an unseen category
and NaN for null), then into the model matrix (numeric columns standardised, categories
one-hot with all zeros for unseen or null), and the estimator is called on that array.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from target_service.dataset import CLASSES, FEATURES, TARGET, FeatureSpec, load_split
from target_service.errors import ModelError

logger = logging.getLogger(__name__)

# Bump when training code or encoding changes, so cached models are retrained.
MODEL_CODE_VERSION = "1"
# Raw-row codes of a categorical value that is not a known category: the same convention
# as target_service.drift's encoding, so the drift monitor tells unseen from missing.
UNSEEN_CODE = -1.0
MISSING_CODE = math.nan


@dataclass(frozen=True)
class FeatureEncoder:
    """Raw rows (one float per feature) to model matrices; fitted on the training rows."""

    features: tuple[FeatureSpec, ...]
    numeric_mean: np.ndarray
    numeric_scale: np.ndarray

    @classmethod
    def fit(cls, frame: pd.DataFrame, features: Sequence[FeatureSpec]) -> FeatureEncoder:
        numeric = [spec.name for spec in features if spec.kind == "numeric"]
        values = frame[numeric].to_numpy(dtype=float)
        scale = values.std(axis=0)
        # A constant column would divide by zero; it carries no information anyway.
        scale[scale == 0] = 1.0
        return cls(tuple(features), values.mean(axis=0), scale)

    @cached_property
    def _layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        # Raw columns of the numeric and categorical features, where each categorical
        # feature's one-hot block starts in the model matrix, and the matrix width.
        numeric = [i for i, spec in enumerate(self.features) if spec.kind == "numeric"]
        categorical = [i for i, spec in enumerate(self.features) if spec.kind == "categorical"]
        sizes = [len(self.features[i].categories) for i in categorical]
        offsets = len(numeric) + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        return np.array(numeric), np.array(categorical), offsets, len(numeric) + sum(sizes)

    def raw_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """Raw rows of a data frame: numeric values, category codes (-1 unseen, NaN null)."""
        columns = []
        for spec in self.features:
            if spec.kind == "numeric":
                columns.append(frame[spec.name].to_numpy(dtype=float))
                continue
            codes = {category: float(code) for code, category in enumerate(spec.categories)}
            values = frame[spec.name]
            mapped = values.map(codes).astype(float)
            mapped[values.notna() & mapped.isna()] = UNSEEN_CODE
            columns.append(mapped.to_numpy(float))
        return np.column_stack(columns)

    def model_matrix(self, raw: np.ndarray) -> np.ndarray:
        """Standardised numeric columns followed by one one-hot block per categorical feature."""
        numeric, categorical, offsets, width = self._layout
        matrix = np.zeros((raw.shape[0], width))
        matrix[:, : len(numeric)] = (raw[:, numeric] - self.numeric_mean) / self.numeric_scale
        codes = raw[:, categorical]
        # False for unseen (-1) and missing (NaN): their one-hot block stays all zero.
        rows, features = np.nonzero(codes >= 0)
        matrix[rows, offsets[features] + codes[rows, features].astype(np.intp)] = 1.0
        return matrix


@dataclass(frozen=True)
class TrainedModel:
    """One model version: its estimator and the encoder it was trained with."""

    version: str
    family: str
    encoder: FeatureEncoder
    estimator: LogisticRegression | GradientBoostingClassifier
    holdout_accuracy: float

    def visit_probability(self, raw: np.ndarray) -> np.ndarray:
        """P(visit) for each raw row; ``raw`` has shape (n, number of features)."""
        return self.estimator.predict_proba(self.encoder.model_matrix(raw))[:, 1]


def training_fingerprint(frame: pd.DataFrame) -> str:
    """Cache key: the training rows, the training code's version and scikit-learn's version."""
    rows_hash = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    digest = hashlib.sha256(rows_hash)
    digest.update(f"code={MODEL_CODE_VERSION};sklearn={sklearn.__version__}".encode())
    return digest.hexdigest()[:20]


def train_models(train: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, TrainedModel]:
    """Fit both versions; a few seconds on two cores."""
    encoder = FeatureEncoder.fit(train, FEATURES)
    matrix = encoder.model_matrix(encoder.raw_rows(train))
    labels = (train[TARGET] == CLASSES[1]).to_numpy(dtype=int)
    holdout_matrix = encoder.model_matrix(encoder.raw_rows(holdout))
    holdout_labels = (holdout[TARGET] == CLASSES[1]).to_numpy(dtype=int)

    estimators = {
        "v1": ("logistic_regression", LogisticRegression(max_iter=2000)),
        "v2": (
            "gradient_boosting",
            GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=0),
        ),
    }
    models = {}
    for version, (family, estimator) in estimators.items():
        estimator.fit(matrix, labels)
        accuracy = float((estimator.predict(holdout_matrix) == holdout_labels).mean())
        models[version] = TrainedModel(version, family, encoder, estimator, accuracy)
        logger.info(
            "trained model version=%s family=%s holdout_accuracy=%.3f", version, family, accuracy
        )
    return models


def load_models(cache_dir: Path) -> dict[str, TrainedModel]:
    """Models from the cache, training and caching them first if missing or stale.

    Several processes may call this at once: an exclusive file lock lets one train while
    the others wait and then read its file.
    """
    split = load_split()
    path = cache_dir / f"models-{training_fingerprint(split.train)}.joblib"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(cache_dir / "train.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                logger.info("training models cache=%s", path)
                _write_atomically(train_models(split.train, split.holdout), path)
            models = joblib.load(path)
    except OSError as error:
        raise ModelError(f"model cache {path}: {error.strerror or error}") from error
    logger.info("models loaded cache=%s", path)
    return models


def _write_atomically(models: dict[str, TrainedModel], path: Path) -> None:
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    joblib.dump(models, temporary)
    os.replace(temporary, path)
