"""The MOSES metrics (Polykovskiy et al. 2020), written on RDKit with MOSES's definitions, because the
``molsets`` code itself no longer runs on current pandas and RDKit.

* ``valid``: share of generated strings RDKit parses into a non-empty molecule;
* ``unique@k``: share of distinct canonical SMILES among the first k valid ones;
* ``novelty``: share of the distinct valid molecules not in the training set;
* ``IntDiv`` / ``IntDiv2``: 1 - mean (resp. root-mean-square) Tanimoto similarity over all pairs of
  generated molecules (Morgan radius 2, 1,024 bits), self-pairs included as MOSES does;
* ``Filters``: share passing MOSES's medicinal-chemistry filters (MCF and PAINS SMARTS shipped in
  ``molsets``, allowed atoms C N S O F Cl Br H, no charges, no ring of 8 or more);
* ``Frag`` / ``Scaf``: cosine similarity of BRICS-fragment / Bemis-Murcko-scaffold (2+ rings) counts
  against the reference set;
* ``SNN``: mean, over generated molecules, of the Tanimoto similarity to the nearest reference one;
* ``FCD``: Frechet ChemNet Distance (PyPI ``fcd``; its ChemNet weights ship inside that package).

>>> m = moses_metrics(["CCO", "CCO", "c1ccccc1", "not a molecule"], reference=["CCN", "c1ccccc1O"],
...                   train=["CCO"], fcd=False)
>>> m["valid"], m["unique@1000"], m["novelty"]
(0.75, 0.6666666666666666, 0.5)
"""

from __future__ import annotations

import warnings
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from diffusio.errors import UsageError


def _mol(smiles: str):
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    return mol if mol is not None and mol.GetNumAtoms() else None


def _quiet():
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def fingerprints(mols) -> np.ndarray:
    """Morgan radius-2, 1,024-bit fingerprints as a (n, 1024) uint8 array."""
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    out = np.zeros((len(mols), 1024), dtype=np.uint8)
    for i, mol in enumerate(mols):
        DataStructs.ConvertToNumpyArray(gen.GetFingerprint(mol), out[i])
    return out


def tanimoto_aggregate(a: np.ndarray, b: np.ndarray, agg: str = "max", p: int = 1, block: int = 4096) -> np.ndarray:
    """For each row of ``b``: max (or mean of the p-th power) Tanimoto similarity to the rows of ``a``."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    na, nb = a32.sum(1), b32.sum(1)
    out = np.zeros(len(b))
    for i in range(0, len(a), block):
        inter = a32[i:i + block] @ b32.T
        union = na[i:i + block, None] + nb[None] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            sim = np.where(union > 0, inter / union, 1.0)
        if agg == "max":
            out = np.maximum(out, sim.max(0))
        else:
            out += (sim ** p).sum(0)
    return out if agg == "max" else (out / len(a)) ** (1 / p)


def internal_diversity(fps: np.ndarray, p: int = 1) -> float:
    return float(1 - tanimoto_aggregate(fps, fps, agg="mean", p=p).mean())


@lru_cache(maxsize=1)
def _filters():
    import pandas as pd
    from rdkit import Chem

    from diffusio.molecules.data import moses_file

    base = moses_file("train").parents[2] / "metrics"
    mcf = pd.read_csv(base / "mcf.csv")
    pains = pd.read_csv(base / "wehi_pains.csv", names=["smarts", "names"])
    return [Chem.MolFromSmarts(s) for s in pd.concat([mcf, pains], sort=True)["smarts"].to_numpy()]


ALLOWED_ATOMS = {"C", "N", "S", "O", "F", "Cl", "Br", "H"}


def passes_filters(mol) -> bool:
    """MOSES's ``mol_passes_filters``."""
    from rdkit import Chem

    ring = mol.GetRingInfo()
    if ring.NumRings() and any(len(r) >= 8 for r in ring.AtomRings()):
        return False
    if any(a.GetFormalCharge() != 0 for a in mol.GetAtoms()):
        return False
    if any(a.GetSymbol() not in ALLOWED_ATOMS for a in mol.GetAtoms()):
        return False
    with_h = Chem.AddHs(mol)
    if any(with_h.HasSubstructMatch(f) for f in _filters()):
        return False
    smiles = Chem.MolToSmiles(mol, isomericSmiles=False)
    return bool(smiles) and Chem.MolFromSmiles(smiles) is not None


def fragments(mols) -> Counter:
    from rdkit import Chem
    from rdkit.Chem import BRICS

    counts = Counter()
    for mol in mols:
        counts.update(Chem.MolToSmiles(BRICS.BreakBRICSBonds(mol)).split("."))
    return counts


def scaffolds(mols, min_rings: int = 2) -> Counter:
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    counts = Counter()
    for mol in mols:
        try:
            scaffold = MurckoScaffold.GetScaffoldForMol(mol)
        except (ValueError, RuntimeError):
            continue
        text = Chem.MolToSmiles(scaffold)
        if text and scaffold.GetRingInfo().NumRings() >= min_rings:
            counts[text] += 1
    return counts


def cosine_similarity(ref: Counter, gen: Counter) -> float:
    if not ref or not gen:
        return float("nan")
    keys = sorted(set(ref) | set(gen))
    r = np.array([ref.get(k, 0) for k in keys], dtype=np.float64)
    g = np.array([gen.get(k, 0) for k in keys], dtype=np.float64)
    return float(r @ g / (np.linalg.norm(r) * np.linalg.norm(g)))


@lru_cache(maxsize=1)
def chemnet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fcd

        return fcd.load_ref_model()


def chemnet_stats(smiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ChemNet's penultimate activations (what FCD compares)."""
    import fcd

    acts = fcd.get_predictions(chemnet(), smiles)
    return acts.mean(0), np.cov(acts.T)


def frechet_chemnet_distance(gen: list[str], reference: list[str] | tuple[np.ndarray, np.ndarray]) -> float:
    import fcd

    mu_r, cov_r = reference if isinstance(reference, tuple) else chemnet_stats(reference)
    mu_g, cov_g = chemnet_stats(gen)
    return float(fcd.calculate_frechet_distance(mu_g, cov_g, mu_r, cov_r))


def moses_metrics(generated: list[str], reference: list[str], train: list[str] | set[str] | None = None, *,
                  ks: tuple[int, ...] = (1000, 10000), fcd: bool = True,
                  reference_stats: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """The MOSES table for ``generated`` SMILES against ``reference`` (MOSES uses its test set) and,
    for novelty, ``train``.  ``reference_stats``: precomputed ChemNet statistics of ``reference``."""
    from rdkit import Chem

    if not generated:
        raise UsageError("there are no molecules to evaluate")
    _quiet()
    mols = [_mol(s) for s in generated]
    valid = [m for m in mols if m is not None]
    out = {"n": len(generated), "valid": len(valid) / len(generated)}
    if not valid:
        raise UsageError(f"none of the {len(generated)} molecules is valid; nothing else can be measured")
    canon = [Chem.MolToSmiles(m) for m in valid]
    for k in ks:
        if len(canon) >= k:
            out[f"unique@{k}"] = len(set(canon[:k])) / k
        else:
            out[f"unique@{k}"] = len(set(canon)) / len(canon)
            out[f"unique@{k} note"] = f"only {len(canon)} valid molecules: unique over all of them"
    if train is not None:
        distinct = set(canon)
        train_set = train if isinstance(train, set) else set(train)
        out["novelty"] = len(distinct - train_set) / len(distinct)
    ref_mols = [m for m in (_mol(s) for s in reference) if m is not None]
    gen_fps, ref_fps = fingerprints(valid), fingerprints(ref_mols)
    out["SNN"] = float(tanimoto_aggregate(ref_fps, gen_fps, agg="max").mean())
    out["Frag"] = cosine_similarity(fragments(ref_mols), fragments(valid))
    out["Scaf"] = cosine_similarity(scaffolds(ref_mols), scaffolds(valid))
    out["IntDiv"] = internal_diversity(gen_fps)
    out["IntDiv2"] = internal_diversity(gen_fps, p=2)
    out["Filters"] = float(np.mean([passes_filters(m) for m in valid]))
    if fcd:
        out["FCD"] = frechet_chemnet_distance(canon, reference_stats or reference)
    return out


def save_stats(path: str | Path, stats: tuple[np.ndarray, np.ndarray]) -> None:
    """ChemNet statistics as a plain .npz (no pickle)."""
    from diffusio._io import atomic_path

    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, mu=stats[0], cov=stats[1])


def load_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return data["mu"], data["cov"]
