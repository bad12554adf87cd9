"""Model training, the on-disk cache and the numpy encoding used per request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from target_service import models as models_module
from target_service.dataset import (
    CATEGORICAL_FEATURES,
    CLASSES,
    FEATURES,
    NUMERIC_FEATURES,
    TARGET,
    load_split,
)
from target_service.models import FeatureEncoder, load_models


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


def test_models_are_two_families_and_beat_the_majority_class(cache_dir: Path) -> None:
    models = load_models(cache_dir)
    holdout = load_split().holdout
    majority_share = holdout[TARGET].value_counts(normalize=True).max()

    assert sorted(models) == ["v1", "v2"]
    assert models["v1"].family != models["v2"].family
    for model in models.values():
        raw = model.encoder.raw_rows(holdout)
        predicted = np.array(CLASSES)[(model.visit_probability(raw) >= 0.5).astype(int)]
        accuracy = (predicted == holdout[TARGET].to_numpy()).mean()
        assert accuracy == pytest.approx(model.holdout_accuracy)
        assert accuracy > majority_share


def test_second_load_reads_the_cache_without_training(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_models(cache_dir)
    calls = []
    monkeypatch.setattr(models_module, "train_models", lambda *args: calls.append(args))

    models = load_models(cache_dir)

    assert calls == []
    assert sorted(models) == ["v1", "v2"]


def test_a_new_code_version_makes_the_cache_stale(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(cache_dir.glob("models-*.joblib"))
    monkeypatch.setattr(models_module, "MODEL_CODE_VERSION", "test-bump")

    load_models(cache_dir)

    added = set(cache_dir.glob("models-*.joblib")) - before
    assert len(added) == 1


def test_encoder_matches_sklearn_scaling_and_one_hot() -> None:
    split = load_split()
    encoder = FeatureEncoder.fit(split.train, FEATURES)
    sample = split.holdout.head(200).copy()
    sample.loc[sample.index[:5], "self_rated_health"] = "unheard-of"

    ours = encoder.model_matrix(encoder.raw_rows(sample))

    reference = ColumnTransformer(
        [
            ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
            (
                "categorical",
                OneHotEncoder(
                    categories=[list(f.categories) for f in FEATURES if f.kind == "categorical"],
                    handle_unknown="ignore",
                ),
                list(CATEGORICAL_FEATURES),
            ),
        ],
        sparse_threshold=0.0,
    ).fit(split.train)
    np.testing.assert_allclose(ours, reference.transform(sample), atol=1e-9)
    assert ours[:5, -4:].sum() == 0.0
