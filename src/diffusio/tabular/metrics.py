"""How good is a synthetic table?  Four measures, each computed by code you can point at.

* :func:`ml_efficacy` -- train a gradient-boosting model on the synthetic rows, test it on real rows
  no model saw, against the same model trained on the real training rows (macro-F1 for a
  categorical target, R^2 for a numeric one);
* :func:`quality` -- SDMetrics' QualityReport (column shapes and column-pair trends, in [0, 1]);
* :func:`detection_auc` -- how well a gradient-boosting classifier tells real rows from synthetic
  ones, as cross-validated ROC AUC (0.5: it cannot; 1.0: it always can);
* :func:`distance_to_closest_record` -- privacy: synthetic rows should not sit closer to the
  training rows than unseen real rows do.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def draw(n):
...     return pd.DataFrame({"x": rng.normal(size=n), "k": rng.choice(["a", "b"], n)})
>>> round(detection_auc(draw(1000), draw(1000), seed=0), 1)   # the same distribution: no better than chance
0.5
>>> shifted = draw(1000).assign(x=lambda t: t.x + 1)
>>> detection_auc(draw(1000), shifted, seed=0) > 0.7
True
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from diffusio.errors import UsageError

MAX_ROWS = 20_000   # detection and DCR subsample to this many rows per side (cost grows with rows^2 for DCR)


def _is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _check_columns(real: pd.DataFrame, synth: pd.DataFrame) -> None:
    if list(real.columns) != list(synth.columns):
        missing = [c for c in real.columns if c not in synth.columns]
        raise UsageError(f"the synthetic table's columns differ from the real table's (missing: {missing[:5]}); "
                         "compare tables with the same columns")
    for name, table in (("real", real), ("synthetic", synth)):
        if len(table) < 2:
            raise UsageError(f"the {name} table has {len(table)} rows; metrics need at least 2")


def model_frame(tables: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The tables with each categorical column as one pandas category dtype over the union of their
    values (so a gradient-boosting model sees the same codes on every table) and numbers as floats."""
    out = [t.copy() for t in tables]
    for col in tables[0].columns:
        if _is_categorical(tables[0][col]):
            cats = sorted({str(v) for t in tables for v in t[col].dropna().unique()})
            dtype = pd.CategoricalDtype(cats)
            for t in out:
                t[col] = t[col].map(lambda v: v if pd.isna(v) else str(v)).astype(dtype)
        else:
            for t in out:
                t[col] = pd.to_numeric(t[col], errors="coerce").astype(float)
    return out


def _booster(classify: bool, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    return cls(categorical_features="from_dtype", random_state=seed, max_iter=200)


def ml_efficacy(train: pd.DataFrame, test: pd.DataFrame, synth: pd.DataFrame, target: str, seed: int = 0) -> dict:
    """Score on ``test`` of a model trained on ``synth`` beside one trained on ``train``.

    Returns ``{"metric", "real", "synthetic", "ratio"}``; ``ratio`` = synthetic / real (1.0: the
    synthetic table teaches as much as the real one).
    """
    from sklearn.metrics import f1_score, r2_score

    _check_columns(train, synth)
    if target not in train.columns:
        raise UsageError(f"target column {target!r} is not in the table")
    train, test, synth = model_frame([train, test, synth])
    classify = _is_categorical(train[target]) or isinstance(train[target].dtype, pd.CategoricalDtype)
    scores = {}
    for name, table in (("real", train), ("synthetic", synth)):
        table = table.dropna(subset=[target])
        model = _booster(classify, seed).fit(table.drop(columns=[target]), table[target] if not classify
                                             else table[target].cat.codes)
        keep = test[target].notna()
        truth = test.loc[keep, target]
        pred = model.predict(test.loc[keep].drop(columns=[target]))
        scores[name] = float(f1_score(truth.cat.codes, pred, average="macro") if classify else r2_score(truth, pred))
    return {"metric": "macro-F1" if classify else "R2", **scores,
            "ratio": scores["synthetic"] / scores["real"] if scores["real"] else float("nan")}


def detection_auc(real: pd.DataFrame, synth: pd.DataFrame, seed: int = 0, folds: int = 3) -> float:
    """Cross-validated ROC AUC of a gradient-boosting classifier telling real rows from synthetic
    ones, on equal numbers of each (at most ``MAX_ROWS``).  0.5 is perfect synthetic data.

    Scores below 0.5 are reported as 0.5, as SDMetrics' detection metrics do: they arise only when
    synthetic rows copy real ones (each copy in a training fold votes its twin in the test fold the
    wrong way), which :func:`distance_to_closest_record` exists to catch."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    _check_columns(real, synth)
    n = min(len(real), len(synth), MAX_ROWS)
    real, synth = real.sample(n, random_state=seed), synth.sample(n, random_state=seed + 1)
    real, synth = model_frame([real, synth])
    x = pd.concat([real, synth], ignore_index=True)
    y = np.r_[np.zeros(n), np.ones(n)]
    scores = np.zeros(2 * n)
    for fit_rows, test_rows in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = _booster(True, seed).fit(x.iloc[fit_rows], y[fit_rows])
        scores[test_rows] = model.predict_proba(x.iloc[test_rows])[:, 1]
    return max(0.5, float(roc_auc_score(y, scores)))


def _unit_space(tables: list[pd.DataFrame], reference: pd.DataFrame) -> list[np.ndarray]:
    """Rows as points: numbers scaled to [0, 1] by the reference's range (missing: -1), categories
    one-hot -- the space TabSyn's DCR is measured in."""
    parts = [[] for _ in tables]
    for col in reference.columns:
        if _is_categorical(reference[col]):
            cats = sorted({str(v) for v in reference[col].dropna().unique()})
            for i, t in enumerate(tables):
                values = t[col].map(lambda v: "<missing>" if pd.isna(v) else str(v))
                parts[i].append(np.stack([(values == c).to_numpy(float) for c in cats], axis=1))
        else:
            ref = pd.to_numeric(reference[col], errors="coerce")
            lo, span = ref.min(), (ref.max() - ref.min()) or 1.0
            for i, t in enumerate(tables):
                v = (pd.to_numeric(t[col], errors="coerce").to_numpy(float) - lo) / span
                parts[i].append(np.where(np.isnan(v), -1.0, v)[:, None])
    return [np.concatenate(p, axis=1).astype(np.float32) for p in parts]


def _nearest(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(points)[0][:, 0]


def distance_to_closest_record(train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame,
                               seed: int = 0) -> dict:
    """Distances from synthetic rows and from unseen real rows (``holdout``) to their closest
    training row, on equal numbers of each.  ``passed``: the synthetic median is at least the
    holdout median, i.e. the synthetic rows sit no closer to the training rows than new real data
    does.  ``share_closer_to_train``: of the synthetic rows, the share nearer a training row than
    any holdout row (about 0.5 for a private generator when train and holdout have equal size)."""
    _check_columns(train, synth)
    n = min(len(holdout), len(synth), MAX_ROWS)
    holdout, synth = holdout.sample(n, random_state=seed), synth.sample(n, random_state=seed + 1)
    train_small = train.sample(min(len(train), n), random_state=seed + 2)
    t, h, s, ts = _unit_space([train, holdout, synth, train_small], train)
    synth_d, holdout_d = _nearest(s, t), _nearest(h, t)
    share = float(np.mean(_nearest(s, ts) < _nearest(s, h)))
    return {"synthetic_median": float(np.median(synth_d)), "holdout_median": float(np.median(holdout_d)),
            "synthetic_p05": float(np.quantile(synth_d, 0.05)), "holdout_p05": float(np.quantile(holdout_d, 0.05)),
            "share_closer_to_train": share,
            "passed": bool(np.median(synth_d) >= np.median(holdout_d))}


def sdv_metadata(table: pd.DataFrame) -> dict:
    """The SDV/SDMetrics metadata of a table: numerical or categorical per column."""
    return {"columns": {str(c): {"sdtype": "categorical" if _is_categorical(table[c]) else "numerical"}
                        for c in table.columns}}


def quality(real: pd.DataFrame, synth: pd.DataFrame) -> dict:
    """SDMetrics' QualityReport: ``score`` (the mean of the two properties), ``column_shapes`` and
    ``column_pair_trends``, plus the per-column shape scores."""
    try:
        with warnings.catch_warnings():  # sdmetrics 0.32 marks the single-table import path deprecated
            warnings.simplefilter("ignore", FutureWarning)
            from sdmetrics.reports.single_table import QualityReport
    except ImportError:
        raise UsageError("the quality score is SDMetrics' QualityReport; run: pip install 'diffusio[tabular]'") from None
    _check_columns(real, synth)
    report = QualityReport()
    report.generate(real, synth, sdv_metadata(real), verbose=False)
    props = report.get_properties().set_index("Property")["Score"]
    details = report.get_details("Column Shapes")
    return {"score": float(report.get_score()), "column_shapes": float(props["Column Shapes"]),
            "column_pair_trends": float(props["Column Pair Trends"]),
            "per_column": {str(r["Column"]): float(r["Score"]) for _, r in details.iterrows()}}


def evaluate_table(train: pd.DataFrame, synth: pd.DataFrame, *, holdout: pd.DataFrame | None = None,
                   target: str | None = None, seed: int = 0) -> dict:
    """Every measure that the inputs allow: quality and detection always; ML efficacy and DCR need
    ``holdout`` (real rows the model never saw), ML efficacy also a ``target``."""
    out = {"quality": quality(train, synth), "detection_auc": detection_auc(train, synth, seed=seed)}
    if holdout is not None:
        out["dcr"] = distance_to_closest_record(train, holdout, synth, seed=seed)
        if target is not None:
            out["ml_efficacy"] = ml_efficacy(train, holdout, synth, target, seed=seed)
    return out
