"""Sample-quality metrics on feature vectors: Frechet distance, KID, improved precision/recall.

All take two arrays of features ``[N, D]`` (real, generated) and return floats.

>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
>>> frechet_distance(a, a + 1.0) > frechet_distance(a, b)
True
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussian fits (Heusel et al. 2017)."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    # Tr((S1 S2)^(1/2)) = sum of sqrt(eig(S1^(1/2) S2 S1^(1/2))): a symmetric problem, so it stays
    # real and stable where a general matrix square root of S1 S2 goes complex on rounding noise.
    w, v = linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_covmean = np.sqrt(np.clip(linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_covmean)


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subsets: int = 50, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018), averaged over subsets."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    m = min(subset_size, len(real), len(fake))
    total = 0.0
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                  - 2 * kxy.mean())
    return float(total / subsets)


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None] - 2 * a @ b.T, 0)


def _kth_radius(x: np.ndarray, k: int) -> np.ndarray:
    d = _pairwise_sq(x, x)
    return np.sort(d, axis=1)[:, k]  # column 0 is the point itself


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls."""
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = _pairwise_sq(fake, real)  # [fake, real]
    precision = float((d <= r_real[None]).any(1).mean())
    recall = float((d.T <= r_fake[None]).any(1).mean())
    return precision, recall


def feature_metrics(real: np.ndarray, fake: np.ndarray, k: int = 3, seed: int = 0) -> dict[str, float]:
    precision, recall = precision_recall(real, fake, k)
    return {"fd": frechet_distance(real, fake), "kid": kernel_inception_distance(real, fake, seed=seed),
            "precision": precision, "recall": recall}
