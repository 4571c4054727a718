"""DebtRank (Battiston et al., Sci. Rep. 2, 541, 2012): distress propagation on an exposure network.

``exposures[i, j]`` is the amount bank ``i`` has lent to (invested in) bank
``j``: an asset of ``i``, a liability of ``j``.  If ``j`` is distressed by
``h_j``, lender ``i`` loses ``W[i, j] h_j`` of its equity, with impact
``W[i, j] = min(1, exposures[i, j] / equity[i])``.  Each node propagates its
distress once (states undistressed -> distressed -> inactive):

    h_i(t) = min(1, h_i(t-1) + sum_{j distressed at t-1} W[i, j] h_j(t-1))

The DebtRank of a scenario is the value-weighted distress it adds beyond the
initial shock, ``R = sum_j v_j h_j(T) - sum_j v_j h_j(1)``; ``v_j`` defaults
to ``j``'s share of all interbank liabilities (Battiston et al.).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from diffusio.errors import UsageError
from diffusio.spread.params import check_number


def exposure_matrix(exposures, banks=None) -> tuple[np.ndarray, np.ndarray]:
    """A dense square exposure matrix and the bank labels from a matrix, DataFrame or CSV file.

    Accepts a square numpy / scipy matrix, a DataFrame or CSV edge list with
    columns ``lender, borrower, amount``, or a CSV of a square numeric matrix.

    Examples
    --------
    >>> edges = pd.DataFrame({"lender": ["a", "b"], "borrower": ["b", "c"], "amount": [5.0, 2.0]})
    >>> matrix, banks = exposure_matrix(edges)
    >>> banks.tolist(), float(matrix[0, 1])
    (['a', 'b', 'c'], 5.0)
    """
    if isinstance(exposures, (str, os.PathLike)):
        path = Path(exposures)
        if not path.is_file():
            raise UsageError(f"exposure file {str(path)!r} not found; pass a CSV edge list or matrix")
        first = path.read_text().splitlines()[:1]
        if first and "lender" in first[0].lower():
            exposures = pd.read_csv(path, skipinitialspace=True)
        else:
            try:
                exposures = np.loadtxt(path, delimiter=",", ndmin=2)
            except ValueError as err:
                raise UsageError(f"cannot read {str(path)!r} as a numeric matrix ({err}); write a square CSV "
                                 "matrix or an edge list with a 'lender,borrower,amount' header") from None
    if isinstance(exposures, pd.DataFrame):
        if not {"lender", "borrower", "amount"} <= set(exposures.columns):
            raise UsageError("an exposure edge list needs columns lender, borrower, amount")
        labels = pd.Index(pd.unique(np.concatenate([exposures["lender"].to_numpy(),
                                                    exposures["borrower"].to_numpy()])))
        if banks is not None:
            labels = pd.Index(list(banks)).append(labels.difference(pd.Index(list(banks)), sort=False))
        n = len(labels)
        matrix = sp.coo_array((exposures["amount"].to_numpy(np.float64),
                               (labels.get_indexer(exposures["lender"]), labels.get_indexer(exposures["borrower"]))),
                              shape=(n, n)).toarray()
        labels = labels.to_numpy()
    else:
        matrix = exposures.toarray() if sp.issparse(exposures) else np.asarray(exposures, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise UsageError(f"the exposure matrix must be square (banks x banks), got shape {matrix.shape}")
        labels = np.arange(matrix.shape[0]) if banks is None else np.asarray(list(banks))
        if labels.size != matrix.shape[0]:
            raise UsageError(f"{labels.size} bank names for a {matrix.shape[0]} x {matrix.shape[0]} matrix")
    if matrix.size == 0:
        raise UsageError("the exposure matrix is empty; pass at least one bank")
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0:
        raise UsageError("exposures must be finite and >= 0")
    return matrix.astype(np.float64), labels


def _per_bank(name: str, value, labels: np.ndarray) -> np.ndarray:
    if isinstance(value, (Mapping, pd.Series)):
        value = dict(value)
        missing = [b for b in labels.tolist() if b not in value]
        if missing:
            raise UsageError(f"{name} has no value for bank {missing[0]!r}; give one for every bank")
        value = [value[b] for b in labels.tolist()]
    array = np.asarray(value, dtype=np.float64).ravel()
    if array.size != labels.size:
        raise UsageError(f"{name} has {array.size} values for {labels.size} banks; give one per bank")
    if not np.all(np.isfinite(array)) or array.min() < 0:
        raise UsageError(f"{name} must be finite and >= 0")
    return array


def impact_matrix(exposures: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """``W[i, j] = min(1, exposures[i, j] / equity[i])``; a bank with no equity is wiped out by any exposure."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = exposures / equity[:, None]
    ratio = np.where(exposures > 0, ratio, 0.0)
    return np.minimum(1.0, np.nan_to_num(ratio, posinf=1.0))


def propagate(impact: np.ndarray, initial: np.ndarray, max_steps: int = 1000) -> np.ndarray:
    """Distress ``h`` after DebtRank propagation from ``initial`` distress levels (each node propagates once).

    Examples
    --------
    >>> w = np.array([[0, 0.5, 0], [0, 0, 0], [1.0, 0, 0]])   # 0 lent to 1, 2 lent to 0
    >>> propagate(w, np.array([0.0, 1.0, 0.0])).tolist()
    [0.5, 1.0, 0.5]
    """
    h = np.asarray(initial, dtype=np.float64).copy()
    distressed = h > 0
    inactive = np.zeros_like(distressed)
    for _ in range(max_steps):
        if not distressed.any():
            break
        h_next = np.minimum(1.0, h + impact[:, distressed] @ h[distressed])
        # D -> I; U -> D once hit; an inactive node still books losses but never passes them on
        newly = (h_next > 0) & ~distressed & ~inactive
        inactive |= distressed
        distressed = newly
        h = h_next
    return h


def debtrank(exposures, equity, *, shock: float = 1.0, value=None, banks=None) -> pd.DataFrame:
    """DebtRank of every bank taken as the single initially distressed node.

    Parameters
    ----------
    exposures : square matrix, DataFrame (lender, borrower, amount) or CSV path
        ``exposures[i, j]``: amount lent by ``i`` to ``j``.
    equity : sequence or {bank: equity}
        Tier-1 capital of each bank (the buffer that absorbs losses).
    shock : float in (0, 1]
        Initial distress ``h`` of the starting bank (1 = default).
    value : sequence or {bank: value}, optional
        Economic value of each bank; default: its share of interbank liabilities.

    Returns
    -------
    pandas.DataFrame
        One row per initially distressed bank: ``bank``, ``debtrank`` (R),
        ``distressed`` (banks reached, h > 0, excluding the start) and
        ``defaults`` (banks with h = 1, excluding the start), sorted by R.

    Examples
    --------
    >>> exposures = np.array([[0, 10, 0], [0, 0, 5], [0, 0, 0]])  # 0 lent to 1, 1 lent to 2
    >>> table = debtrank(exposures, equity=[20, 5, 1], value=[1/3, 1/3, 1/3])
    >>> table.set_index("bank").loc[2, "debtrank"].round(4)   # 2 fails: 1 loses all, 0 loses 10/20
    np.float64(0.5)
    """
    matrix, labels = exposure_matrix(exposures, banks)
    equity = _per_bank("equity", equity, labels)
    shock = check_number("shock", shock, 0.0, 1.0)
    if shock == 0:
        raise UsageError("shock must be in (0, 1]; pass e.g. shock=1 for a default")
    if value is None:
        liabilities = matrix.sum(axis=0)
        if liabilities.sum() <= 0:
            raise UsageError("no exposures between banks; DebtRank needs at least one positive exposure")
        value = liabilities / liabilities.sum()
    else:
        value = _per_bank("value", value, labels)
        value = value / value.sum()
    impact = impact_matrix(matrix, equity)
    n = labels.size
    rows = []
    for start in range(n):
        initial = np.zeros(n)
        initial[start] = shock
        h = propagate(impact, initial)
        others = np.arange(n) != start
        rows.append((labels[start], float(value @ h - value @ initial), int(np.count_nonzero(h[others] > 0)),
                     int(np.count_nonzero(h[others] >= 1.0))))
    table = pd.DataFrame(rows, columns=["bank", "debtrank", "distressed", "defaults"])
    return table.sort_values("debtrank", ascending=False, kind="stable").reset_index(drop=True)


def plot_debtrank(table: pd.DataFrame, path, *, top: int = 30, title: str | None = None):
    """Horizontal bars of the ``top`` largest DebtRanks, written atomically to PNG."""
    from diffusio.figures import figure, save

    shown = table.head(top).iloc[::-1]
    with figure(7.0, max(3.0, 0.25 * len(shown) + 1.0)) as (fig, ax):
        ax.barh([str(b) for b in shown["bank"]], shown["debtrank"], color="tab:red")
        ax.set_xlabel("DebtRank R (share of economic value lost, beyond the initial default)")
        ax.set_title(title or "DebtRank of each bank as the initially distressed node")
        return save(fig, path)
