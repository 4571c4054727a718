"""Molecules in and out: the MOSES splits (shipped inside the PyPI package ``molsets``) and a user's
SMILES files, with every invalid line reported by number and skipped, never a crash."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from diffusio.errors import UsageError

SPLITS = ("train", "test", "test_scaffolds")
MAX_FILE_BYTES = 1 << 30


def moses_file(split: str) -> Path:
    """Path of a MOSES split inside the installed ``molsets`` package."""
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    spec = importlib.util.find_spec("moses")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("the MOSES data ship in the PyPI package molsets; run: pip install --no-deps molsets")
    path = Path(list(spec.submodule_search_locations)[0]) / "dataset" / "data" / f"{split}.csv.gz"
    if not path.is_file():
        raise UsageError(f"molsets is installed but has no {path.name}; reinstall it: pip install --no-deps molsets")
    return path


def load_moses(split: str = "train", limit: int | None = None, seed: int = 0) -> list[str]:
    """SMILES of a MOSES split (the whole split, or ``limit`` drawn at random with ``seed``).

    >>> smiles = load_moses("test", limit=3, seed=0)
    >>> len(smiles), all(isinstance(s, str) for s in smiles)
    (3, True)
    """
    with gzip.open(moses_file(split), "rt") as fh:
        header = fh.readline().strip().split(",")
        column = header.index("SMILES") if "SMILES" in header else 0
        smiles = [line.rstrip("\n").split(",")[column] for line in fh if line.strip()]
    if limit is not None and limit < len(smiles):
        pick = np.random.default_rng(seed).choice(len(smiles), size=limit, replace=False)
        smiles = [smiles[i] for i in np.sort(pick)]
    return smiles


def read_smiles(path: str | os.PathLike) -> tuple[list[str], list[tuple[int, str]]]:
    """(valid SMILES, [(line number, text) of each invalid one]) from a file of one SMILES per line,
    or a CSV whose header has a ``SMILES`` column (any case).  A clear error for a missing, empty or
    binary file, or one without a single valid molecule."""
    from rdkit import Chem, RDLogger

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} is not a file; give a .csv or .smi file with one SMILES per line")
    if path.stat().st_size == 0:
        raise UsageError(f"{path} is empty; give a file with one SMILES per line")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{path} is over 1 GiB; split it first")
    raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise UsageError(f"cannot read {path}: it holds binary bytes, not text SMILES")
    lines = raw.decode("utf-8", errors="replace").splitlines()
    column, start = None, 0
    head = [c.strip().lower() for c in lines[0].split(",")] if lines else []
    if "smiles" in head:
        column, start = head.index("smiles"), 1
    RDLogger.DisableLog("rdApp.*")
    try:
        good, bad = [], []
        for number, line in enumerate(lines[start:], start=start + 1):
            text = line.split(",")[column].strip() if column is not None and "," in line else line.strip().split()[0] \
                if line.strip() else ""
            if not text:
                continue
            if Chem.MolFromSmiles(text) is None:
                bad.append((number, text))
            else:
                good.append(text)
    finally:
        RDLogger.EnableLog("rdApp.*")
    if not good:
        raise UsageError(f"{path} holds no valid SMILES ({len(bad)} invalid lines, e.g. line "
                         f"{bad[0][0] if bad else '-'}); give one SMILES per line")
    return good, bad
