"""Column mixing against memorisation (TabCutMixPlus; Fang et al., 2024, "Understanding and
Mitigating Memorization in Diffusion Models for Tabular Data").

A diffusion model trained long on a small table learns its rows by heart: samples land on training
rows.  Training on rows whose groups of correlated columns are taken from another row of the same
class gives it far more distinct rows to learn than the table has, while each group keeps its
internal dependencies (radius, perimeter and area stay together).  Groups: columns joined by
average-linkage clustering of the largest absolute correlation between their coordinates.

>>> x = np.array([[0., 0., 5.], [1., 1., 6.], [2., 2., 5.], [3., 3., 6.]], dtype=np.float32)
>>> [g.tolist() for g in column_groups(x, [(0, 1), (1, 1), (2, 1)], threshold=0.5)]
[[0, 1], [2]]
"""

from __future__ import annotations

import numpy as np
import torch


def column_groups(x: np.ndarray, blocks: list[tuple[int, int]], threshold: float = 0.5) -> list[np.ndarray]:
    """Encoded coordinates of each group of columns that move together.

    ``blocks``: (first coordinate, width) of every column in ``x``; columns whose coordinates
    correlate (absolute Pearson r, on average linkage) at ``threshold`` or more share a group.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(blocks) == 1:
        return [np.arange(blocks[0][0], blocks[0][0] + blocks[0][1])]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.abs(np.corrcoef(x, rowvar=False)), nan=0.0)
    corr = np.atleast_2d(corr)
    k = len(blocks)
    similar = np.zeros((k, k))
    for i, (a, wa) in enumerate(blocks):
        for j, (b, wb) in enumerate(blocks):
            similar[i, j] = 1.0 if i == j else corr[a:a + wa, b:b + wb].max()
    distance = np.clip(1.0 - similar, 0.0, None)
    labels = fcluster(linkage(squareform(distance, checks=False), method="average"), t=1.0 - threshold,
                      criterion="distance")
    return [np.concatenate([np.arange(a, a + w) for (a, w), lab in zip(blocks, labels) if lab == group])
            for group in np.unique(labels)]


def largest_cross_correlation(x: np.ndarray, groups: list[np.ndarray]) -> float:
    """The largest absolute correlation between two coordinates of different groups: how much
    dependence mixing (which pairs groups from different rows) would throw away (inf for a single
    group, which mixing cannot move).

    >>> x = np.array([[0., 0., 5.], [1., 1., 6.], [2., 2., 5.], [3., 3., 6.]], dtype=np.float32)
    >>> round(largest_cross_correlation(x, [np.array([0, 1]), np.array([2])]), 3)
    0.447
    """
    if len(groups) < 2:
        return float("inf")  # one group: mixing would move nothing, so nothing is independent to mix
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.abs(np.corrcoef(x, rowvar=False)), nan=0.0)
    group = np.empty(x.shape[1], dtype=np.int64)
    for i, coords in enumerate(groups):
        group[coords] = i
    return float(np.atleast_2d(corr)[group[:, None] != group[None, :]].max())


class ColumnMixer:
    """Training rows with some column groups taken from a partner row of the same class.

    ``rate``: the share of rows that are mixed; a mixed row takes each group from its partner with
    probability 1/2.  ``classes``: each row's class (None: partners are any row).
    """

    def __init__(self, x: torch.Tensor, groups: list[np.ndarray], classes: torch.Tensor | None, rate: float):
        self.x, self.rate = x, rate
        self.group_of = torch.empty(x.shape[1], dtype=torch.long)
        for g, coords in enumerate(groups):
            self.group_of[torch.from_numpy(coords)] = g
        self.n_groups = len(groups)
        classes = torch.zeros(len(x), dtype=torch.long) if classes is None else classes
        self.order = torch.argsort(classes, stable=True)          # rows grouped by class
        self.counts = torch.bincount(classes)
        self.starts = torch.cumsum(self.counts, 0) - self.counts
        self.classes = classes

    def __call__(self, rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = self.classes[rows]
        pick = (torch.rand(len(rows), generator=gen) * self.counts[c]).long()
        partners = self.order[self.starts[c] + pick]
        mixed = torch.rand(len(rows), generator=gen) < self.rate
        take = (torch.rand(len(rows), self.n_groups, generator=gen) < 0.5) & mixed[:, None]
        take = take[:, self.group_of]                            # group -> its coordinates
        return torch.where(take, self.x[partners], self.x[rows])
