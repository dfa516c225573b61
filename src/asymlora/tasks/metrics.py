"""Metrics on the paper's scale (×100), computed with scikit-learn and scipy only.

Every metric takes ``(predictions, labels)``: ``predictions`` are logits ``(n, k)`` for
classification (argmax over the last axis is the predicted class) or scores ``(n,)`` / ``(n, 1)``
for regression; ``labels`` are ``(n,)``.

* accuracy   = 100 · mean(ŷ = y)
* f1         = 100 · F1 of the positive class 1 (binary tasks, e.g. MRPC)
* macro_f1   = 100 · unweighted mean of per-class F1
* matthews   = 100 · (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) (multi-class form of sklearn)
* pearson    = 100 · Pearson r of the scores; spearman = 100 · Spearman ρ
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _classes(predictions) -> np.ndarray:
    p = np.asarray(predictions)
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=-1)
    return p.reshape(-1).astype(np.int64)


def _scores(predictions) -> np.ndarray:
    return np.asarray(predictions, dtype=np.float64).reshape(-1)


def _labels(labels) -> np.ndarray:
    return np.asarray(labels).reshape(-1)


def accuracy(predictions, labels) -> float:
    from sklearn.metrics import accuracy_score

    return 100.0 * float(accuracy_score(_labels(labels), _classes(predictions)))


def f1(predictions, labels) -> float:
    from sklearn.metrics import f1_score

    return 100.0 * float(f1_score(_labels(labels), _classes(predictions), pos_label=1,
                                  average="binary", zero_division=0))


def macro_f1(predictions, labels) -> float:
    from sklearn.metrics import f1_score

    return 100.0 * float(f1_score(_labels(labels), _classes(predictions), average="macro",
                                  zero_division=0))


def matthews(predictions, labels) -> float:
    from sklearn.metrics import matthews_corrcoef

    return 100.0 * float(matthews_corrcoef(_labels(labels), _classes(predictions)))


def _corr(fn, predictions, labels) -> float:
    x, y = _scores(predictions), _labels(labels).astype(np.float64)
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return 0.0  # undefined correlation (constant input): report 0 instead of NaN
    return 100.0 * float(fn(x, y)[0])


def pearson(predictions, labels) -> float:
    from scipy.stats import pearsonr

    return _corr(pearsonr, predictions, labels)


def spearman(predictions, labels) -> float:
    from scipy.stats import spearmanr

    return _corr(spearmanr, predictions, labels)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "macro_f1": macro_f1,
    "matthews": matthews,
    "pearson": pearson,
    "spearman": spearman,
}


def metric_suite(names) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """A ``compute_metrics(predictions, labels) -> {name: value}`` for the given metric names."""
    names = tuple(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")

    def compute(predictions, labels) -> dict[str, float]:
        if isinstance(predictions, tuple):  # some models return (logits, extra)
            predictions = predictions[0]
        if len(_labels(labels)) != np.asarray(predictions).shape[0]:
            raise ValueError(f"{np.asarray(predictions).shape[0]} predictions for {len(_labels(labels))} labels")
        return {n: METRICS[n](predictions, labels) for n in names}

    compute.metric_names = names  # type: ignore[attr-defined]
    return compute
