"""SELFIES tokens (Krenn et al. 2020): every string of them decodes to a valid molecule, so a model
over them cannot produce an invalid one.

>>> vocab = Vocabulary.build(["CCO", "c1ccccc1"])
>>> ids = vocab.encode(["CCO"], length=8)
>>> ids.shape, vocab.decode(ids)
((1, 8), ['CCO'])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffusio.errors import UsageError

PAD, MASK = "[pad]", "[mask]"   # lower case: no SELFIES token looks like these


def to_selfies(smiles: str) -> list[str] | None:
    import selfies as sf

    try:
        return list(sf.split_selfies(sf.encoder(smiles)))
    except Exception:  # selfies raises its own EncoderError and sometimes ValueError on odd input
        return None


def canonical(smiles: str) -> str | None:
    """RDKit's canonical SMILES, or None for an invalid or empty molecule."""
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    return Chem.MolToSmiles(mol) if mol is not None and mol.GetNumAtoms() else None


@dataclass
class Vocabulary:
    tokens: list[str]   # index 0 is PAD, 1 is MASK

    @classmethod
    def build(cls, smiles: list[str]) -> "Vocabulary":
        seen = set()
        for s in smiles:
            seen.update(to_selfies(s) or [])
        if not seen:
            raise UsageError("none of the molecules could be written as SELFIES; check the SMILES")
        return cls([PAD, MASK, *sorted(seen)])

    @property
    def pad(self) -> int:
        return 0

    @property
    def mask(self) -> int:
        return 1

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, smiles: list[str], length: int) -> np.ndarray:
        """Token ids (n, length), PAD after the end.  Molecules longer than ``length`` tokens or with a
        token outside the vocabulary are left out (see :meth:`encode_kept` for which)."""
        return self.encode_kept(smiles, length)[0]

    def encode_kept(self, smiles: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
        index = {t: i for i, t in enumerate(self.tokens)}
        rows, kept = [], []
        for i, s in enumerate(smiles):
            toks = to_selfies(s)
            if toks is None or len(toks) > length or any(t not in index for t in toks):
                continue
            rows.append([index[t] for t in toks] + [0] * (length - len(toks)))
            kept.append(i)
        return np.array(rows, dtype=np.int64).reshape(-1, length), np.array(kept, dtype=np.int64)

    def decode(self, ids: np.ndarray) -> list[str]:
        """Canonical SMILES of each row (PAD and MASK tokens skipped); '' for an empty molecule."""
        import selfies as sf

        out = []
        for row in np.asarray(ids):
            text = "".join(self.tokens[i] for i in row if i > 1)
            try:
                smiles = sf.decoder(text) if text else ""
            except Exception:
                smiles = ""
            out.append(canonical(smiles) or "")
        return out
