"""pipeline_code.drift gives Evidently's default drift scores and verdicts, column by column.

Evidently (a test dependency; it needs Python 3.10, the processing image has 3.9) is the reference: the same
column pair goes through ``evidently.legacy``'s default test choice and implementation and through ours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from pipeline_code import drift

EVIDENTLY_KIND = {drift.NUMERICAL: ColumnType.Numerical, drift.CATEGORICAL: ColumnType.Categorical}
EVIDENTLY_NAME = {"ks": "ks", "chisquare": "chisquare", "z": "z", "wasserstein": "wasserstein",
                  "jensenshannon": "jensenshannon"}


def evidently_result(reference: pd.Series, current: pd.Series, kind: str) -> tuple:
    reference = reference.replace([-np.inf, np.inf], np.nan).dropna()
    current = current.replace([-np.inf, np.inf], np.nan).dropna()
    test = get_stattest(reference, current, EVIDENTLY_KIND[kind], None)
    result = test(reference, current, EVIDENTLY_KIND[kind], None)
    return test.name, float(result.drift_score), bool(result.drifted)


def _cases():
    rng = np.random.default_rng(7)
    numbers = lambda n, shift=0.0: pd.Series(rng.normal(100 + shift, 15, n))  # noqa: E731
    categories = lambda n, p: pd.Series(rng.choice(["web", "store", "phone", "mail"], n, p=p))  # noqa: E731
    flags = lambda n, p: pd.Series(rng.choice([0, 1], n, p=[1 - p, p]))  # noqa: E731
    even, skewed = [0.25, 0.25, 0.25, 0.25], [0.1, 0.1, 0.2, 0.6]
    return {
        "ks, same": (numbers(800), numbers(400), drift.NUMERICAL, "ks", False),
        "ks, shifted": (numbers(800), numbers(400, 10), drift.NUMERICAL, "ks", True),
        "chi-square, same": (categories(600, even), categories(300, even), drift.CATEGORICAL, "chisquare", False),
        "chi-square, skewed": (categories(600, even), categories(300, skewed), drift.CATEGORICAL, "chisquare", True),
        "z, same": (flags(700, 0.3), flags(300, 0.3), drift.NUMERICAL, "z", False),
        "z, shifted": (flags(700, 0.3), flags(300, 0.6), drift.NUMERICAL, "z", True),
        "wasserstein, same": (numbers(5000), numbers(2000), drift.NUMERICAL, "wasserstein", False),
        "wasserstein, shifted": (numbers(5000), numbers(2000, 6), drift.NUMERICAL, "wasserstein", True),
        "jensen-shannon, same": (categories(5000, even), categories(2000, even), drift.CATEGORICAL,
                                 "jensenshannon", False),
        "jensen-shannon, skewed": (categories(5000, even), categories(2000, skewed), drift.CATEGORICAL,
                                   "jensenshannon", True),
        "jensen-shannon on few numbers": (flags(3000, 0.2), flags(1000, 0.5), drift.NUMERICAL, "jensenshannon", True),
        "missing and infinite values dropped": (
            pd.concat([numbers(900), pd.Series([np.nan, np.inf, -np.inf])], ignore_index=True),
            pd.concat([numbers(500, 8), pd.Series([np.nan] * 20)], ignore_index=True),
            drift.NUMERICAL, "ks", True),
    }


CASES = _cases()


@pytest.mark.parametrize("case", sorted(CASES))
def test_scores_and_verdicts_equal_evidentlys(case):
    reference, current, kind, expected_test, expected_drift = CASES[case]
    ours = drift.column_drift("x", reference, current, kind)
    name, score, drifted = evidently_result(reference, current, kind)
    assert ours.test == EVIDENTLY_NAME[name] == expected_test
    assert ours.score == pytest.approx(score, rel=1e-9, abs=1e-12)
    assert ours.drifted is drifted is expected_drift


def test_dataset_drift_is_the_share_of_drifted_columns():
    reference, shifted, kind, *_ = CASES["wasserstein, shifted"]
    categories_ref, categories_cur, *_ = CASES["jensen-shannon, same"]
    reference_frame = pd.DataFrame({"amount": reference, "channel": categories_ref})
    current_frame = pd.DataFrame({"amount": shifted.iloc[:2000].reset_index(drop=True),
                                  "channel": categories_cur.reset_index(drop=True)})
    kinds = {"amount": drift.NUMERICAL, "channel": drift.CATEGORICAL}
    result = drift.dataset_drift(reference_frame, current_frame, kinds)
    assert [c["drifted"] for c in result["columns"]] == [True, False]
    assert result["drifted_share"] == 0.5 and result["dataset_drift"] is True
    assert drift.dataset_drift(reference_frame, current_frame, kinds, drift_share=0.6)["dataset_drift"] is False


def test_column_kind():
    assert drift.column_kind(pd.Series([1, 2, 3])) == drift.NUMERICAL
    assert drift.column_kind(pd.Series([1.5, np.nan])) == drift.NUMERICAL
    assert drift.column_kind(pd.Series(["a", "b"])) == drift.CATEGORICAL
    assert drift.column_kind(pd.Series([True, False])) == drift.CATEGORICAL


def test_unusable_columns_are_named():
    with pytest.raises(drift.DriftError, match="'amount' has no values in the current data"):
        drift.column_drift("amount", pd.Series([1.0, 2.0]), pd.Series([np.nan, np.inf]), drift.NUMERICAL)
    with pytest.raises(drift.DriftError, match="'amount' is numerical in the baseline"):
        drift.column_drift("amount", pd.Series([1.0, 2.0]), pd.Series(["x", "y"]), drift.NUMERICAL)
    with pytest.raises(drift.DriftError, match=r"column\(s\) \['age'\] are missing"):
        drift.dataset_drift(pd.DataFrame({"age": [1]}), pd.DataFrame({"other": [1]}), {"age": drift.NUMERICAL})
