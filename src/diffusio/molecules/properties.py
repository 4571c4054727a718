"""The properties a chemist asks for -- QED (drug-likeness), logP, molecular weight -- computed by
RDKit, binned for conditioning, and parsed from conditions such as ``"qed>0.8"``.

>>> props = compute_properties(["CCO"])
>>> round(float(props[0, NAMES.index("weight")]), 1)
46.1
>>> parse_condition("qed>0.8"), parse_condition("200<weight<300"), parse_condition("logp=1:3")
(('qed', 0.8, inf), ('weight', 200.0, 300.0), ('logp', 1.0, 3.0))
"""

from __future__ import annotations

import math
import re

import numpy as np

from diffusio.errors import UsageError

NAMES = ("qed", "logp", "weight")
_NUMBER = r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?"


def _functions():
    from rdkit.Chem import Crippen, Descriptors, QED

    return {"qed": QED.qed, "logp": Crippen.MolLogP, "weight": Descriptors.MolWt}


def compute_properties(smiles: list[str]) -> np.ndarray:
    """(n, 3) float array of QED, logP, weight; NaN rows for invalid molecules."""
    from rdkit import Chem, RDLogger

    funcs = _functions()
    out = np.full((len(smiles), len(NAMES)), np.nan)
    RDLogger.DisableLog("rdApp.*")
    try:
        for i, s in enumerate(smiles):
            mol = Chem.MolFromSmiles(s) if s else None
            if mol is not None:
                out[i] = [funcs[name](mol) for name in NAMES]
    finally:
        RDLogger.EnableLog("rdApp.*")
    return out


def parse_condition(text: str) -> tuple[str, float, float]:
    """``NAME>X``, ``NAME<X``, ``LO<NAME<HI`` or ``NAME=LO:HI`` as (name, lo, hi)."""
    clean = text.replace(" ", "").lower().replace(">=", ">").replace("<=", "<")
    names = "|".join(NAMES)
    patterns = [
        (rf"^({names})>({_NUMBER})$", lambda m: (m[1], float(m[2]), math.inf)),
        (rf"^({names})<({_NUMBER})$", lambda m: (m[1], -math.inf, float(m[2]))),
        (rf"^({_NUMBER})<({names})<({_NUMBER})$", lambda m: (m[2], float(m[1]), float(m[3]))),
        (rf"^({names})=({_NUMBER}):({_NUMBER})$", lambda m: (m[1], float(m[2]), float(m[3]))),
    ]
    for pattern, build in patterns:
        match = re.match(pattern, clean)
        if match:
            name, lo, hi = build(match)
            if not lo < hi:
                raise UsageError(f"condition {text!r} is an empty range ({lo} to {hi}); give LO < HI")
            return name, lo, hi
    word = re.match(r"^[a-z_]+", clean.lstrip("0123456789.<>-+"))
    if word and word[0] not in NAMES:
        raise UsageError(f"condition {text!r}: unknown property {word[0]!r}; known: {', '.join(NAMES)}")
    raise UsageError(f"condition {text!r} is not understood; write e.g. qed>0.8, logp<3, 250<weight<350 "
                     "or weight=250:350")


class Bins:
    """Quantile bins of each property on the training molecules (bin 1..k; 0 = no condition), and the
    training mass of each bin inside a requested range."""

    def __init__(self, quantiles: np.ndarray, k: int):
        self.quantiles = np.asarray(quantiles, dtype=np.float64)   # (properties, 101)
        self.k = k

    @classmethod
    def fit(cls, values: np.ndarray, k: int) -> "Bins":
        return cls(np.nanquantile(values, np.linspace(0, 1, 101), axis=0).T, k)

    def edges(self, p: int) -> np.ndarray:
        return np.interp(np.linspace(0, 1, self.k + 1), np.linspace(0, 1, 101), self.quantiles[p])

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bin index (1..k) of each value; 0 where it is missing."""
        out = np.zeros(values.shape, dtype=np.int64)
        for p in range(values.shape[1]):
            inner = self.edges(p)[1:-1]
            ok = ~np.isnan(values[:, p])
            out[ok, p] = np.searchsorted(inner, values[ok, p], side="right") + 1
        return out

    def mass_in(self, p: int, lo: float, hi: float) -> np.ndarray:
        """Training share of each bin (k,) that lies within [lo, hi], from the quantile function."""
        grid = np.linspace(0, 1, 101)
        cdf = lambda v: float(np.interp(v, self.quantiles[p], grid, left=0.0, right=1.0))  # noqa: E731
        edges = self.edges(p)
        return np.array([max(0.0, cdf(min(hi, edges[b + 1])) - cdf(max(lo, edges[b]))) for b in range(self.k)])

    def check_range(self, name: str, lo: float, hi: float) -> np.ndarray:
        p = NAMES.index(name)
        mass = self.mass_in(p, lo, hi)
        if mass.sum() <= 1e-6:
            low, high = self.quantiles[p, 0], self.quantiles[p, -1]
            raise UsageError(f"no training molecule has {name} in ({lo:g}, {hi:g}); the training set spans "
                             f"{low:.3g} to {high:.3g} -- ask for a range inside it")
        return mass
