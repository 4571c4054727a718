"""diffusio.tabular: diffusion models for mixed-type tables (numeric, integer, categorical, missing).

>>> from diffusio.tabular import TableDiffusion, load_table
>>> df, target = load_table("wine")
>>> synth = TableDiffusion(steps=20, width=32, depth=1).fit(df, target=target).sample(3, seed=0)
>>> synth.shape
(3, 14)
"""

from diffusio.tabular.datasets import TABLES, load_table, read_table
from diffusio.tabular.model import TableDiffusion

__all__ = ["TABLES", "TableDiffusion", "load_table", "read_table"]
