"""The label check: sampled rows whose features do not look like their class are drawn again.

A table model conditioned on its target draws a row *for* a class, but a diffusion model blurs what
sets the classes apart: on churn, a booster fitted on the real training rows calls 48 % of the
synthetic churners "no" against 25 % of real ones it has not seen (docs/benchmarks-tabular.md,
"Label check"), and a model trained on such rows learns a weaker rule.  So, as the image models
redraw images their check classifier does not name (``Generator.sample(redraws=...)``), a table
model can redraw the rows a **label check** finds unlikely for their class: data-centric filtering
of synthetic data (Hansen et al. 2023, "Reimagining synthetic tabular data generation through
data-centric AI"), here with the class kept: a redrawn row is drawn again for the same class.

The check is scikit-learn's ``HistGradientBoostingClassifier`` fitted on the model's own encoding
of the training rows (numbers quantile-normalised, categories one-hot: no missing values, no
categorical splits).  Its trees are copied into plain arrays (:class:`TreeEnsemble`), saved in
``model.safetensors`` and read by the code below, never pickled; the probabilities agree with
scikit-learn's to float precision (tested).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(400, 3)).astype(np.float32)
>>> y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
>>> check = fit_label_check(x, y, seed=0)
>>> p = check.proba(np.array([[2.0, 2.0, 0.0], [-2.0, -2.0, 0.0]], dtype=np.float32))
>>> p.argmax(1).tolist()
[1, 0]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from diffusio._resources import check_memory
from diffusio.errors import UsageError

PREFIX = "label_check."
GEMM_CELLS = 2 ** 22  # (row, inner node) decisions per chunk of the matrix walk: ~50 MB of work arrays
TABLE_CELLS = 2 ** 24  # the walk by table when trees x 2^(inner nodes) is at most this (int16: 32 MB)
# A smaller booster than scikit-learn's default (200 trees of 31 leaves): a row's check then costs
# about a fifth of the walk, and on churn it kept the ML efficacy the default's gave (0.976 vs 0.980)
# early stopping off: the same trees at every size (scikit-learn turns it on above 10,000 rows, and
# its stratified validation split fails on a class with one row)
BOOSTER = {"max_iter": 100, "max_leaf_nodes": 15, "learning_rate": 0.2, "early_stopping": False}
MAX_CLASSES = 50  # a booster has a tree per class and step: beyond this the check costs more than it is worth
PERCENTILES = 101
FOLDS = 3  # out-of-fold probabilities of the real rows: what the booster makes of rows it has not seen


@dataclass
class TreeEnsemble:
    """Gradient-boosted trees as arrays: node ``i`` splits on ``feature[i]`` at ``threshold[i]``
    (rows with ``x <= threshold`` go to ``left[i]``), or is a leaf worth ``value[i]``; ``roots``
    (iterations, outputs) are the first nodes of the trees; the raw score of output ``k`` is
    ``baseline[k]`` plus its trees' leaves.  One output is a binary classifier's log-odds of class 1,
    ``k > 2`` outputs are a multiclass one's logits, one per entry of ``labels``."""

    baseline: np.ndarray
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray
    labels: np.ndarray  # the class code of each probability column (the classes the training rows show)
    # per label: the 0, 1, ..., 100th percentiles of the probability real rows the booster did not
    # train on get for their own class (out of fold): how recognisable real rows of each class are
    real_percentiles: np.ndarray | None = None
    _cache: tuple | None = field(default=None, init=False, repr=False, compare=False)  # see _matrices
    _table: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)  # see _leaf_table

    @classmethod
    def from_sklearn(cls, model) -> "TreeEnsemble":
        """Copy a fitted ``HistGradientBoostingClassifier`` (numeric features, no missing values)."""
        nodes, roots, offset = [], [], 0
        for iteration in model._predictors:
            roots.append([])
            for tree in iteration:
                n = tree.nodes
                if n["is_categorical"].any():
                    raise ValueError("the label check's trees split numeric features only")
                part = np.zeros(len(n), dtype=[("f", np.int64), ("t", np.float64), ("l", np.int64), ("r", np.int64),
                                               ("leaf", bool), ("v", np.float64)])
                part["f"], part["t"], part["leaf"], part["v"] = n["feature_idx"], n["num_threshold"], n["is_leaf"], n["value"]
                part["l"], part["r"] = n["left"].astype(np.int64) + offset, n["right"].astype(np.int64) + offset
                nodes.append(part)
                roots[-1].append(offset)
                offset += len(n)
        a = np.concatenate(nodes)
        return cls(np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1), np.array(roots, dtype=np.int64),
                   a["f"], a["t"], a["l"], a["r"], a["leaf"], a["v"], np.asarray(model.classes_, dtype=np.int64))

    def real_bar(self, codes: np.ndarray, share: float) -> np.ndarray:
        """For each class code: the probability of its own class under which a ``share`` of real rows
        of that class fall (out of fold); 0 for a class the check never saw."""
        at = np.linspace(0, 1, self.real_percentiles.shape[1])
        bars = np.array([np.interp(share, at, row) for row in self.real_percentiles])
        codes = np.asarray(codes, dtype=np.int64)
        column = np.clip(np.searchsorted(self.labels, codes), 0, len(self.labels) - 1)
        return np.where(self.labels[column] == codes, bars[column], 0.0)

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw scores (rows, outputs), every tree at once as array operations (after the GEMM
        strategy of Hummingbird, Nakandala et al. 2020): each row's decision at every inner node, read
        as one binary number per tree, which a table per tree turns into the leaf reached (while the
        tables stay under :data:`TABLE_CELLS` entries: 300 trees of 14 inner nodes, the booster's for
        three classes, take 4.9 M); larger trees take
        ``paths @ decisions``, which equals a leaf's count of left turns only at the leaf it reaches.
        The comparisons are exact (float64, or float32 rows against thresholds rounded down to
        float32), so the leaves reached are exactly those of a walk down the trees (their values
        summed in float64)."""
        features, thresholds, paths, turns, values, exact = self._matrices()
        x = np.asarray(x)
        if x.dtype != np.float32:  # float32 rows (the encoder's) compare exactly with the float32 thresholds
            x, thresholds = x.astype(np.float64), exact
        x = torch.from_numpy(np.ascontiguousarray(x))
        trees, inner = features.shape
        table = self._leaf_table() if trees * 2 ** inner <= TABLE_CELLS else None
        if table is not None:  # bit i of a tree's number: left at its inner node i
            bits = (2.0 ** torch.arange(inner, dtype=torch.float32)).expand(trees, 1, -1)
        else:
            numbers = torch.arange(values.shape[1], dtype=torch.float32).expand(trees, 1, -1)
        chunk = max(1, GEMM_CELLS // max(1, features.numel()))
        iterations, outputs = self.roots.shape
        raw = np.empty((len(x), outputs))
        for i in range(0, len(x), chunk):
            rows = x[i:i + chunk].T.contiguous()  # (width, rows): the gather lays out (trees, inner nodes, rows)
            left = rows.index_select(0, features.reshape(-1)).view(trees, inner, -1) <= thresholds[..., None]
            left = left.to(torch.float32)
            if table is not None:  # the numbers are exact: under 2^24
                leaf = table.gather(1, torch.bmm(bits, left)[:, 0].long()).long()
            else:
                hit = (torch.bmm(paths, left) == turns[..., None]).to(torch.float32)  # one leaf each
                leaf = torch.bmm(numbers, hit)[:, 0].long()  # (trees, rows): its number, as a product (argmax is slow)
            raw[i:i + chunk] = values.gather(1, leaf).view(iterations, outputs, -1).sum(dim=0).T.numpy()
        return self.baseline + raw

    def _leaf_table(self) -> torch.Tensor:
        """Per tree, the leaf (its place in ``values``) that each pattern of decisions at the inner
        nodes reaches: ``table[t, n]`` for the number ``n`` whose bit ``i`` is 1 where the row goes
        left at inner node ``i``.  Bits of nodes off a leaf's path (or padding) do not matter."""
        if self._table is None:
            features, _, paths, turns, _, _ = self._matrices()
            trees, inner = features.shape
            numbers = torch.arange(2 ** inner)
            decisions = ((numbers[:, None] >> torch.arange(inner)) & 1).to(torch.float32)  # (numbers, inner)
            table = torch.empty((trees, 2 ** inner), dtype=torch.int16)  # a tree has fewer leaves than 2^15
            for t in range(trees):  # the leaf whose count of left turns the pattern matches
                hit = decisions @ paths[t].T == turns[t]
                table[t] = hit.to(torch.uint8).argmax(dim=1)
            self._table = table
        return self._table

    def _matrices(self) -> tuple[torch.Tensor, ...]:
        """Per tree (in ``roots`` order), padded to the largest tree: the inner nodes' features and
        thresholds; ``paths[t, l, i]`` +1 where leaf ``l`` lies left of inner node ``i``, -1 right,
        0 off its path; each leaf's count of left turns (padding: unreachable); the leaves' values;
        the thresholds again as float64 (the first ones are float32, rounded down, for float32 rows)."""
        if self._cache is None:
            trees = []
            for root in self.roots.reshape(-1):
                inner, leaves, stack = [], [], [(int(root), [])]
                while stack:
                    node, path = stack.pop()
                    if self.leaf[node]:
                        leaves.append((node, path))
                        continue
                    at = len(inner)
                    inner.append(node)
                    stack += [(int(self.right[node]), path + [(at, -1.0)]), (int(self.left[node]), path + [(at, 1.0)])]
                trees.append((inner, leaves))
            n_inner = max(1, max(len(i) for i, _ in trees))
            n_leaves = max(len(l) for _, l in trees)
            check_memory(4.0 * len(trees) * n_leaves * n_inner, "the label check's trees as matrices",
                         "refit the model (its booster has 15 leaves a tree)")
            features = np.zeros((len(trees), n_inner), dtype=np.int64)
            thresholds = np.full((len(trees), n_inner), np.inf)
            paths = np.zeros((len(trees), n_leaves, n_inner), dtype=np.float32)
            turns = np.full((len(trees), n_leaves), n_inner + 1.0, dtype=np.float32)  # padding: more than any count
            values = np.zeros((len(trees), n_leaves))
            for t, (inner, leaves) in enumerate(trees):
                features[t, :len(inner)], thresholds[t, :len(inner)] = self.feature[inner], self.threshold[inner]
                for l, (node, path) in enumerate(leaves):
                    for at, sign in path:
                        paths[t, l, at] = sign
                    turns[t, l] = sum(sign > 0 for _, sign in path)
                    values[t, l] = self.value[node]
            # x <= t exactly when x <= the largest float32 not above t, for any float32 x
            with np.errstate(over="ignore"):  # a threshold past float32's range becomes inf: still above every row
                below = thresholds.astype(np.float32)
            below = np.where(below > thresholds, np.nextafter(below, np.float32(-np.inf)), below)
            self._cache = tuple(map(torch.from_numpy, (features, below, paths, turns, values, thresholds)))
        return self._cache

    def proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (rows, len(labels)), as ``predict_proba`` gives them."""
        raw = self.raw(x)
        if len(self.labels) == 2:
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.stack([1 - p1, p1], axis=1)
        raw = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(raw)
        return e / e.sum(axis=1, keepdims=True)

    def tensors(self) -> dict[str, torch.Tensor]:
        arrays = {"baseline": self.baseline, "roots": self.roots, "feature": self.feature, "threshold": self.threshold,
                  "left": self.left, "right": self.right, "leaf": self.leaf.astype(np.uint8), "value": self.value,
                  "labels": self.labels, "real_percentiles": self.real_percentiles}
        return {PREFIX + k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], width: int, classes: int) -> "TreeEnsemble | None":
        """The check saved by :meth:`tensors` (None when the weights hold none), validated against the
        model's ``width`` coordinates and ``classes`` so that a tampered file fails here, not inside the walk."""
        if PREFIX + "roots" not in tensors:
            return None
        try:
            t = {k[len(PREFIX):]: tensors[k].numpy() for k in tensors if k.startswith(PREFIX)}
            check = cls(t["baseline"].astype(np.float64), t["roots"].astype(np.int64), t["feature"].astype(np.int64),
                        t["threshold"].astype(np.float64), t["left"].astype(np.int64), t["right"].astype(np.int64),
                        t["leaf"].astype(bool), t["value"].astype(np.float64), t["labels"].astype(np.int64),
                        t["real_percentiles"].astype(np.float64))
        except KeyError as err:
            raise UsageError(f"model.safetensors holds a partial label check (no {err.args[0]!r}); refit the model") from None
        flat = (check.baseline, check.feature, check.threshold, check.left, check.right, check.leaf, check.value, check.labels)
        labels = check.labels
        if (any(a.ndim != 1 for a in flat) or len(labels) < 2 or (np.diff(labels) <= 0).any() or labels[0] < 0
                or labels[-1] >= classes):
            raise UsageError("model.safetensors holds a label check whose classes do not fit the model; refit the model")
        n = len(check.leaf)
        inner = ~check.leaf
        sizes = {len(a) for a in (check.feature, check.threshold, check.left, check.right, check.value)}
        outputs = 1 if len(check.labels) == 2 else len(check.labels)
        if (sizes != {n} or n == 0 or check.roots.ndim != 2 or check.roots.shape[1] != outputs or len(check.baseline) != outputs
                or (check.roots < 0).any() or (check.roots >= n).any()
                or (check.feature[inner] < 0).any() or (check.feature[inner] >= width).any()
                or (check.left[inner] <= np.flatnonzero(inner)).any() or (check.right[inner] <= np.flatnonzero(inner)).any()
                or (check.left[inner] >= n).any() or (check.right[inner] >= n).any()
                or check.real_percentiles.shape != (len(check.labels), PERCENTILES)
                or not ((check.real_percentiles >= 0) & (check.real_percentiles <= 1)).all()):
            raise UsageError("model.safetensors holds a label check whose trees do not fit the model; refit the model")
        parents = np.bincount(np.concatenate([check.left[inner], check.right[inner]]), minlength=n)
        if (parents > 1).any() or (parents[check.roots.reshape(-1)] > 0).any():  # trees, not shared branches
            raise UsageError("model.safetensors holds a label check whose nodes are not trees; refit the model")
        return check


def fit_label_check(x: np.ndarray, codes: np.ndarray, seed: int = 0) -> TreeEnsemble | None:
    """A booster of the target's class (``codes``) from encoded rows ``x``; None when the training
    rows hold a single class (nothing to check) or more than :data:`MAX_CLASSES`."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    if not 2 <= len(np.unique(codes)) <= MAX_CLASSES:
        return None
    x = np.asarray(x, dtype=np.float64)
    booster = HistGradientBoostingClassifier(random_state=seed, **BOOSTER)
    check = TreeEnsemble.from_sklearn(booster.fit(x, codes))
    counts = np.bincount(codes)
    if counts[counts > 0].min() >= FOLDS:
        split = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
        oof = cross_val_predict(HistGradientBoostingClassifier(random_state=seed, **BOOSTER), x, codes, cv=split,
                                method="predict_proba")
        own = oof[np.arange(len(codes)), np.searchsorted(check.labels, codes)]
    else:  # a class with fewer rows than folds: the booster's in-sample view (it finds rows surer than they are)
        own = class_probability(check, x, codes)
    check.real_percentiles = np.stack([np.quantile(own[codes == label], np.linspace(0, 1, PERCENTILES))
                                       for label in check.labels])
    return check


def blurred_classes(check: TreeEnsemble, score: np.ndarray, codes: np.ndarray, share: float,
                    slack: float) -> list[int]:
    """The class codes the model makes less recognisable than the real data: more of their sampled
    rows (``score``: the check's probability of their own class) than ``share + slack`` fall under
    the probability that ``share`` of their real rows (out of fold) fall under."""
    classes = np.unique(codes)
    real = check.real_bar(classes, share)
    return [int(c) for c, bar in zip(classes, real) if np.mean(score[codes == c] < bar) > share + slack]


def class_probability(check: TreeEnsemble, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """How likely the check finds each encoded row's own class ``codes``; 1 for a class no training
    row had (the check knows nothing of it, so nothing is redrawn)."""
    codes = np.asarray(codes, dtype=np.int64)
    column = np.clip(np.searchsorted(check.labels, codes), 0, len(check.labels) - 1)
    own = check.proba(x)[np.arange(len(codes)), column]
    return np.where(check.labels[column] == codes, own, 1.0)
