"""The file-level tasks behind ``diffusio molecules``: train into a run folder, write generated
molecules as CSV (plus a drawn grid), evaluate any SMILES file with the MOSES metrics (plus
property histograms).  Inputs are checked before anything is written; outputs are atomic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from diffusio._io import atomic_path, atomic_save_json, check_output
from diffusio.errors import UsageError
from diffusio.generative.training.fitting import check_run_folder
from diffusio.molecules.data import load_moses, read_smiles
from diffusio.molecules.model import MoleculeDiffusion
from diffusio.molecules.properties import NAMES, compute_properties

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED = "moses-small"


def resolve_model(name: str | Path | None) -> Path:
    """A run folder, or the name of a model shipped with diffusio (default: moses-small)."""
    name = SHIPPED if name is None else name
    shipped = WEIGHTS_DIR / str(name)
    if (shipped / "config.json").is_file():
        return shipped
    if Path(name).is_dir():
        return Path(name)
    known = sorted(p.name for p in WEIGHTS_DIR.glob("*") if (p / "config.json").is_file())
    raise UsageError(f"model {str(name)!r} is neither a run folder nor a shipped model ({', '.join(known) or 'none'})")


def train_file(out: str | Path, *, data: str | None = None, limit: int | None = 300_000, resume: bool = False,
               seed: int = 0, init: str | Path | None = None, **settings) -> MoleculeDiffusion:
    """Train on the MOSES training split (``limit`` molecules drawn with ``seed``) or on a SMILES
    file; never overwrites a model in ``out`` unless ``resume``.  ``init``: continue a trained model
    (see :meth:`MoleculeDiffusion.fit`)."""
    if init is not None:
        resolve_model(init)  # a wrong name is named before minutes of data preparation
    out = check_run_folder(out, resume)
    if limit is not None and limit < 2:
        raise UsageError(f"limit must be at least 2 molecules, got {limit}")
    if data is None:
        smiles = load_moses("train", limit=limit, seed=seed)
    else:
        smiles, bad = read_smiles(data)
        if bad:
            print(f"skipped {len(bad)} invalid SMILES in {data} (first: line {bad[0][0]}: {bad[0][1]!r})")
        smiles = smiles[:limit] if limit else smiles
    return MoleculeDiffusion(seed=seed, **settings).fit(smiles, out=out, resume=resume, init=init)


def draw_grid(smiles: list[str], path: str | Path, per_row: int = 6, count: int = 24) -> Path:
    """The first ``count`` molecules drawn by RDKit in a grid, written as PNG."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [m for m in (Chem.MolFromSmiles(s) for s in smiles if s) if m is not None][:count]
    if not mols:
        raise UsageError("no valid molecule to draw")
    image = Draw.MolsToGridImage(mols, molsPerRow=per_row, subImgSize=(220, 180))
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def generate_file(n: int, output: str | Path, *, model: str | Path | None = None, condition: str | None = None,
                  guidance: float | None = None, steps: int | None = None, seed: int = 0,
                  picture: str | Path | None = None, force: bool = False, bf16: str | None = None,
                  sampler: str | None = None) -> pd.DataFrame:
    """Generate ``n`` molecules into ``output`` (.csv: smiles, qed, logp, weight)."""
    path = check_output(output, suffixes=(".csv",), force=force)
    if path.exists() and not force:
        raise UsageError(f"-o {path} exists; add --force to overwrite it, or choose another -o")
    if picture is not None:
        check_output(picture, suffixes=(".png",), flag="--picture")
    table = MoleculeDiffusion.load(model).sample(n, seed=seed, condition=condition, guidance=guidance, steps=steps,
                                                 progress=True, bf16=bf16, sampler=sampler)
    with atomic_path(path, suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    if picture is not None:
        draw_grid(table["smiles"].tolist(), picture)
    return table


def property_figure(generated: list[str], reference: list[str], path: str | Path) -> Path:
    """Histograms of QED, logP and weight: generated beside the reference set."""
    from diffusio.figures import figure, save

    gen, ref = compute_properties(generated), compute_properties(reference)
    with figure(11, 3.2, ncols=len(NAMES)) as (fig, axes):
        for i, (ax, name) in enumerate(zip(axes, NAMES)):
            r, g = ref[:, i][~np.isnan(ref[:, i])], gen[:, i][~np.isnan(gen[:, i])]
            bins = np.linspace(*np.percentile(r, [0.5, 99.5]), 41)
            ax.hist(r, bins=bins, density=True, alpha=0.55, label="MOSES test" if len(reference) else "reference")
            ax.hist(np.clip(g, bins[0], bins[-1]), bins=bins, density=True, alpha=0.55, label="generated")
            ax.set_title(name)
        axes[0].legend(fontsize=8)
        return save(fig, path)


def evaluate_file(source: str | Path, *, reference_size: int = 10_000, fcd: bool = True, seed: int = 0,
                  output: str | Path | None = None, picture: str | Path | None = None) -> dict:
    """The MOSES table for a SMILES file (ours or anyone's) against ``reference_size`` molecules of
    the MOSES test split, with novelty against the whole training split.  Invalid lines are
    counted as invalid molecules (MOSES's validity) and reported by line."""
    from diffusio.molecules.metrics import moses_metrics

    if output is not None:
        check_output(output, suffixes=(".json",), inputs=(source,))
    if picture is not None:
        check_output(picture, suffixes=(".png",), inputs=(source,), flag="--picture")
    good, bad = read_smiles(source)
    generated = good + [""] * len(bad)   # invalid lines count against validity, as MOSES counts them
    reference = load_moses("test", limit=reference_size, seed=seed)
    train = set(load_moses("train"))
    result = moses_metrics(generated, reference, train, fcd=fcd)
    result.update({"source": str(source), "invalid_lines": [n for n, _ in bad[:20]], "reference": f"MOSES test, "
                   f"{len(reference):,} molecules (seed {seed})", "novelty_against": f"MOSES train, {len(train):,}"})
    if output is not None:
        atomic_save_json(output, result)
    if picture is not None:
        property_figure(good, reference, picture)
    return result


def format_metrics(result: dict) -> str:
    keys = ["valid", "unique@1000", "unique@10000", "novelty", "FCD", "SNN", "Frag", "Scaf", "IntDiv", "IntDiv2",
            "Filters"]
    return json.dumps({k: round(result[k], 4) for k in keys if k in result})
