"""diffusio.molecules: masked discrete diffusion over SELFIES that designs drug-like molecules,
scored with the MOSES metrics.

>>> from diffusio.molecules import MoleculeDiffusion, load_moses
>>> smiles = load_moses("test", limit=64, seed=0)
>>> table = MoleculeDiffusion(steps=2, width=32, depth=1, heads=2).fit(smiles).sample(3, seed=0)
>>> len(table)
3
"""

from diffusio.molecules.data import load_moses, read_smiles
from diffusio.molecules.model import MoleculeDiffusion

__all__ = ["MoleculeDiffusion", "load_moses", "read_smiles"]
