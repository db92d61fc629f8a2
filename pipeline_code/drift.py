"""Feature drift between a reference sample (the training split) and a window of served requests.

The tests, thresholds and the rule that picks one per column are Evidently's defaults (Evidently 0.7,
``evidently.legacy.calculations.stattests``), computed here with scipy, which the processing image has:
Evidently itself needs Python 3.10 or later, and the scikit-learn image runs 3.9. The test suite checks
that these scores equal Evidently's on the same data.

Per column (infinities and missing values dropped first; ``n`` is the number of distinct values in
reference and current together):

=================  ==============================  ===========================================  ==========
reference rows     column                          test (score)                                 drift when
=================  ==============================  ===========================================  ==========
at most 1000       numerical, n > 5                Kolmogorov-Smirnov (p-value)                 p <= 0.05
at most 1000       categorical, or n <= 5          chi-square (p-value); Z-test when n <= 2     p < 0.05
more than 1000     numerical, n > 5                Wasserstein distance / reference std         >= 0.1
more than 1000     categorical, or n <= 5          Jensen-Shannon distance                      >= 0.1
=================  ==============================  ===========================================  ==========

The dataset drifts when at least ``drift_share`` (0.5) of the columns drift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

NUMERICAL = "numerical"
CATEGORICAL = "categorical"
KINDS = (NUMERICAL, CATEGORICAL)
SMALL_REFERENCE_ROWS = 1000
FEW_VALUES = 5
JENSEN_SHANNON_BINS = 30
DEFAULT_DRIFT_SHARE = 0.5

TESTS = {
    "ks": ("Kolmogorov-Smirnov p-value", 0.05, "p_value"),
    "chisquare": ("chi-square p-value", 0.05, "p_value"),
    "z": ("Z-test p-value", 0.05, "p_value"),
    "wasserstein": ("Wasserstein distance (normed)", 0.1, "distance"),
    "jensenshannon": ("Jensen-Shannon distance", 0.1, "distance"),
}
"""test name -> (what the score is, default threshold, score kind: a p-value drifts below, a distance above)."""


class DriftError(ValueError):
    """Raised for a column that cannot be compared (empty after cleaning, or not numeric where it must be)."""


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    test: str
    score: float
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int

    def to_dict(self) -> dict:
        return asdict(self)


def column_kind(values: pd.Series) -> str:
    """``numerical`` for a numeric (not boolean) column, else ``categorical``."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return CATEGORICAL
    return NUMERICAL


def _clean(values: pd.Series) -> pd.Series:
    return values.replace([-np.inf, np.inf], np.nan).dropna()


def choose_test(reference: pd.Series, current: pd.Series, kind: str) -> str:
    """The default test for one cleaned column pair (see the module table)."""
    if kind not in KINDS:
        raise DriftError(f"column kind {kind!r} is not one of {list(KINDS)}")
    distinct = pd.concat([reference, current]).nunique()
    few = kind == CATEGORICAL or distinct <= FEW_VALUES
    if len(reference) <= SMALL_REFERENCE_ROWS:
        if few:
            return "chisquare" if distinct > 2 else "z"
        return "ks"
    return "jensenshannon" if few else "wasserstein"


def _counts(reference: pd.Series, current: pd.Series) -> tuple:
    keys = list(set(reference.unique()) | set(current.unique()))
    reference_counts, current_counts = reference.value_counts(), current.value_counts()
    return (np.array([reference_counts.get(key, 0) for key in keys], dtype=float),
            np.array([current_counts.get(key, 0) for key in keys], dtype=float), keys)


def _ks(reference: pd.Series, current: pd.Series) -> float:
    return float(stats.ks_2samp(reference, current)[1])


def _chisquare(reference: pd.Series, current: pd.Series) -> float:
    reference_counts, current_counts, _ = _counts(reference, current)
    expected = reference_counts * (len(current) / len(reference))
    return float(stats.chisquare(current_counts, expected)[1])


def _z(reference: pd.Series, current: pd.Series) -> float:
    if reference.nunique() == 1 and current.nunique() == 1 and reference.unique()[0] == current.unique()[0]:
        return 1.0
    first = sorted(set(reference.unique()) | set(current.unique()))[0]
    p_reference = float((reference != first).sum()) / len(reference)
    p_current = float((current != first).sum()) / len(current)
    pooled = (p_reference * len(reference) + p_current * len(current)) / (len(reference) + len(current))
    z = (p_reference - p_current) / np.sqrt(pooled * (1 - pooled) * (1.0 / len(reference) + 1.0 / len(current)))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def _wasserstein(reference: pd.Series, current: pd.Series) -> float:
    norm = max(float(np.std(reference)), 0.001)
    return float(stats.wasserstein_distance(reference, current) / norm)


def _jensenshannon(reference: pd.Series, current: pd.Series, kind: str) -> float:
    if kind == NUMERICAL and reference.nunique() > 20:
        edges = np.histogram_bin_edges(np.asarray(pd.concat([reference, current]).values), bins="sturges")
        reference_share = np.histogram(reference, edges)[0] / len(reference)
        current_share = np.histogram(current, edges)[0] / len(current)
    else:
        reference_counts, current_counts, _ = _counts(reference, current)
        reference_share, current_share = reference_counts / len(reference), current_counts / len(current)
    return float(distance.jensenshannon(reference_share, current_share))


def column_drift(name: str, reference: pd.Series, current: pd.Series, kind: str,
                 threshold: float | None = None) -> ColumnDrift:
    """Drift of one column; ``threshold`` overrides the chosen test's default."""
    reference, current = _clean(reference), _clean(current)
    if reference.empty or current.empty:
        side = "reference" if reference.empty else "current"
        raise DriftError(f"column {name!r} has no values in the {side} data after dropping missing ones")
    if kind == NUMERICAL and not (pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(current)):
        raise DriftError(f"column {name!r} is numerical in the baseline but holds non-numeric values")
    test = choose_test(reference, current, kind)
    limit = TESTS[test][1] if threshold is None else float(threshold)
    if test == "ks":
        score = _ks(reference, current)
        drifted = score <= limit
    elif test in ("chisquare", "z"):
        score = _chisquare(reference, current) if test == "chisquare" else _z(reference, current)
        drifted = score < limit
    elif test == "wasserstein":
        score = _wasserstein(reference, current)
        drifted = score >= limit
    else:
        score = _jensenshannon(reference, current, kind)
        drifted = score >= limit
    return ColumnDrift(name, kind, test, score, limit, bool(drifted), len(reference), len(current))


def dataset_drift(reference: pd.DataFrame, current: pd.DataFrame, kinds: dict,
                  drift_share: float = DEFAULT_DRIFT_SHARE) -> dict:
    """Every column of ``kinds`` (name -> kind) compared; the share that drifted and the dataset verdict."""
    missing = [name for name in kinds if name not in current.columns or name not in reference.columns]
    if missing:
        raise DriftError(f"column(s) {missing} are missing from the reference or the current data")
    columns = [column_drift(name, reference[name], current[name], kind) for name, kind in kinds.items()]
    drifted = sum(column.drifted for column in columns)
    share = drifted / len(columns) if columns else 0.0
    return {
        "columns": [column.to_dict() for column in columns],
        "drifted_columns": drifted,
        "drifted_share": share,
        "drift_share_threshold": drift_share,
        "dataset_drift": bool(columns) and share >= drift_share,
    }
