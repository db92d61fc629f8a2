"""Plots of a model's test results, drawn with matplotlib (Agg): used by the local runner and by the recording
step in the scikit-learn image (matplotlib comes from the wheelhouse there).

- ``plot_roc``: the ROC curve of an ``evaluation.json``'s ``binary_classification_metrics``;
- ``plot_confusion``: the confusion matrix of its ``multiclass_classification_metrics``;
- ``plot_residuals``: predicted against actual, and the residuals (regression);
- ``plot_importance``: global SHAP values, largest first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(evaluation: dict, path: Path) -> None:
    metrics = evaluation["binary_classification_metrics"]
    curve = metrics["receiver_operating_characteristic_curve"]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(curve["false_positive_rates"], curve["true_positive_rates"],
              label=f"test AUC {metrics['auc']['value']:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve, test split")
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_confusion(evaluation: dict, path: Path) -> None:
    metrics = evaluation["multiclass_classification_metrics"]
    matrix = metrics["confusion_matrix"]
    classes = sorted(matrix)
    counts = np.array([[matrix[actual].get(predicted, 0) for predicted in classes] for actual in classes])
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 5))
    axes.imshow(counts, cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set(xticks=range(len(classes)), xticklabels=classes, yticks=range(len(classes)), yticklabels=classes,
             xlabel="predicted", ylabel="actual",
             title=f"Confusion matrix, weighted F1 {metrics['weighted_f1']['value']:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_residuals(actual: np.ndarray, predicted: np.ndarray, r2: float, path: Path) -> None:
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.scatter(actual, predicted, s=6, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], linestyle="--", color="grey")
    left.set(xlabel="actual", ylabel="predicted", title=f"Test split, R\u00b2 {r2:.3f}")
    right.hist(predicted - actual, bins=40)
    right.set(xlabel="predicted - actual", ylabel="rows", title="Residuals")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_importance(values: dict, title: str, path: Path, top: int = 15) -> None:
    """Horizontal bars of the ``top`` largest mean |SHAP| values."""
    ranked = sorted(values.items(), key=lambda item: item[1], reverse=True)[:top][::-1]
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 0.35 * len(ranked) + 1.5))
    axes.barh([name for name, _ in ranked], [value for _, value in ranked])
    axes.set(xlabel="mean |SHAP value|", title=title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
