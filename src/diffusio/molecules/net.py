"""The network of the molecule model: a bidirectional transformer over SELFIES tokens that predicts,
at every position, the clean token (MDLM's parameterisation, Sahoo et al. 2024: no time input --
the number of masks says how noisy the sequence is).  Property conditions enter as one learned
embedding per (property, bin), with bin 0 meaning "no condition" for classifier-free guidance."""

from __future__ import annotations

import torch
from torch import nn


class TokenTransformer(nn.Module):
    def __init__(self, vocab: int, length: int, width: int = 192, depth: int = 4, heads: int = 4,
                 properties: int = 0, bins: int = 0):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.randn(length, width) * 0.02)
        self.condition = nn.ModuleList(nn.Embedding(bins + 1, width) for _ in range(properties))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, vocab)

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (batch, length, vocab) for token ids (batch, length); ``cond`` (batch, properties)
        holds bin indices, 0 for unconditioned."""
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        if cond is not None:
            for k, table in enumerate(self.condition):
                h = h + table(cond[:, k])[:, None]
        return self.out(self.norm(self.blocks(h)))
