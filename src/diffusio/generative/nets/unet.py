"""A compact UNet: residual blocks, FiLM by noise level and condition, self-attention.

The condition is one vector per image (a sentence embedding, or a one-hot class
vector); an all-zero vector means "no condition", which is what classifier-free
guidance drops to.  With a single condition token, cross-attention reduces to a
learned projection, so FiLM (scale and shift of every residual block) is the
cheaper equivalent.

A wish adapter (``wish_dims > 0``) reads the last ``wish_dims`` entries of the condition (attribute
wishes, conditioning/attributes.py) with the noise level and adds its own scale and shift to every
residual block; it is exactly zero on rows without wishes, so a parent network taught wishes this
way, frozen, still computes what it computed before wherever no wish is given.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class FourierEmbedding(nn.Module):
    """Sinusoidal embedding of the scalar noise input ``c_noise``."""

    def __init__(self, dim: int, max_period: float = 10000.0):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        # EDM's c_noise = ln(sigma)/4 is O(1); scale up so the low frequencies still vary.
        angles = (c_noise.float() * 1000.0)[:, None] * self.freqs[None]
        return torch.cat([angles.cos(), angles.sin()], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the most groups (up to 32) that divide ``channels``."""
    groups = math.gcd(channels, 32)  # largest group count <= 32 that divides the width
    return nn.GroupNorm(groups, channels)


def output_head(width: int, channels: int) -> nn.Sequential:
    """Norm, SiLU and a 3x3 convolution to ``channels``, zero-initialised: a new network starts
    by predicting zero (EDM's preconditioning then returns a scaled copy of its input)."""
    head = nn.Sequential(group_norm(width), nn.SiLU(), nn.Conv2d(width, channels, 3, padding=1))
    nn.init.zeros_(head[-1].weight)
    nn.init.zeros_(head[-1].bias)
    return head


class ResBlock(nn.Module):
    """Conv residual block whose normalised features are scaled and shifted by the embedding."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float, wishes: bool = False):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * cout)
        # the wish adapter's own scale and shift of this block, zero at first (the parent unchanged), and
        # without a bias, so that it stays zero on rows without wishes (their wish embedding is zero)
        self.wish_film = nn.Linear(emb_dim, 2 * cout, bias=False) if wishes else None
        if self.wish_film is not None:
            nn.init.zeros_(self.wish_film.weight)
        self.norm2, self.conv2 = group_norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # every block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, wish: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        film = self.film(emb)
        if wish is not None and self.wish_film is not None:
            film = film + self.wish_film(wish)  # wish is exactly zero on rows without wishes
        scale, shift = film[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        h = self.conv2(self.dropout(h))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    def __init__(self, channels: int, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """UNet over ``levels`` resolutions, halving at each, with attention at the listed levels.

    >>> net = UNet(channels=1, base=16, mults=(1, 2), cond_dim=8)
    >>> net(torch.zeros(2, 1, 28, 28), torch.zeros(2), torch.zeros(2, 8)).shape
    torch.Size([2, 1, 28, 28])
    """

    def __init__(self, channels: int = 1, base: int = 64, mults: tuple[int, ...] = (1, 2, 2),
                 blocks: int = 2, attn_levels: tuple[int, ...] = (2,), cond_dim: int = 0,
                 dropout: float = 0.1, wish_dims: int = 0):
        super().__init__()
        if not 0 <= wish_dims <= cond_dim:
            raise ValueError(f"wish_dims must be in [0, cond_dim={cond_dim}], got {wish_dims}")
        self.config = dict(channels=channels, base=base, mults=list(mults), blocks=blocks,
                           attn_levels=list(attn_levels), cond_dim=cond_dim, dropout=dropout)
        if wish_dims:  # only then, so that the configs of models without an adapter stay as they were
            self.config["wish_dims"] = wish_dims
        emb = 4 * base
        self.noise_embed = nn.Sequential(FourierEmbedding(base), nn.Linear(base, emb), nn.SiLU(),
                                         nn.Linear(emb, emb))
        self.cond_embed = (nn.Sequential(nn.Linear(cond_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
                           if cond_dim else None)
        # The wish adapter (attribute wishes taught to a frozen parent): the last wish_dims entries
        # of the condition, with the noise level, give every residual block its own scale and shift.
        self.wish_embed = (nn.Sequential(nn.Linear(wish_dims + emb, emb), nn.SiLU(), nn.Linear(emb, emb))
                           if wish_dims else None)
        wishes = bool(wish_dims)
        self.stem = nn.Conv2d(channels, base, 3, padding=1)

        self.down = nn.ModuleList()
        widths, width = [base], base
        for level, mult in enumerate(mults):
            for _ in range(blocks):
                out = base * mult
                self.down.append(self._stage(width, out, emb, dropout, level in attn_levels, wishes))
                width = out
                widths.append(width)
            if level < len(mults) - 1:
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                widths.append(width)
        self.mid = nn.ModuleList([ResBlock(width, width, emb, dropout, wishes), SelfAttention(width),
                                  ResBlock(width, width, emb, dropout, wishes)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                out = base * mult
                self.up.append(self._stage(width + widths.pop(), out, emb, dropout, level in attn_levels, wishes))
                width = out
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.head = output_head(width, channels)

    @staticmethod
    def _stage(cin, cout, emb, dropout, attn, wishes):
        layers = [ResBlock(cin, cout, emb, dropout, wishes)]
        if attn:
            layers.append(SelfAttention(cout))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self._walk(x, c_noise, cond))

    def decoder_features(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None = None, *,
                         stages: int = 1) -> torch.Tensor:
        """Activations after the first ``stages`` decoder stages (the first is at the lowest
        resolution): what image search embeds, without running the rest of the decoder.

        >>> net = UNet(channels=1, base=16, mults=(1, 2), cond_dim=8)
        >>> net.decoder_features(torch.zeros(2, 1, 28, 28), torch.zeros(2)).shape
        torch.Size([2, 32, 14, 14])
        """
        if stages < 1:
            raise ValueError(f"stages must be >= 1, got {stages}")
        return self._walk(x, c_noise, cond, stop_after=stages)

    def _condition(self, cond: torch.Tensor) -> torch.Tensor:
        if self.wish_embed is None:
            return self.cond_embed(cond)
        # With a wish adapter the parent is frozen and its first layer's wish columns are zero: leave
        # them out of the product, contiguous, so that it is the parent's own product (a wider or strided
        # one rounds otherwise on AVX-512 CPUs, and "no wish gives the parent's image to the bit" fails).
        first, text = self.cond_embed[0], cond.shape[1] - self.config["wish_dims"]
        prompt, weight = cond[:, :text].contiguous(), first.weight[:, :text].contiguous()
        return self.cond_embed[1:](F.linear(prompt, weight, first.bias))

    def _walk(self, x, c_noise, cond, stop_after: int | None = None) -> torch.Tensor:
        emb = self.noise_embed(c_noise.reshape(-1).expand(x.shape[0]))
        wish = None
        if self.cond_embed is not None:
            if cond is None:  # "no condition" is the all-zero vector that condition dropout trained
                cond = x.new_zeros(x.shape[0], self.config["cond_dim"])
            if self.wish_embed is not None:
                wish = self._wish(cond[:, cond.shape[1] - self.config["wish_dims"]:], emb)
            emb = emb + self._condition(cond)
        h = self.stem(x)
        skips = [h]
        for layer in self.down:
            h = self._run(layer, h, emb, wish)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, emb, wish) if isinstance(layer, ResBlock) else layer(h)
        stages = 0
        for layer in self.up:
            if isinstance(layer, nn.Upsample):
                h = layer(h)
                continue
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:  # odd sizes (7 -> 14 is fine, but 7 <- 4 is not): match the skip
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = self._run(layer, torch.cat([h, skip], dim=1), emb, wish)
            stages += 1
            if stages == stop_after:
                break
        return h

    def _wish(self, block: torch.Tensor, noise_emb: torch.Tensor) -> torch.Tensor:
        """The adapter's embedding of the wish block, exactly zero on rows that carry no wish (the
        block is all zeros there), so those rows compute what the parent computes, to the bit."""
        has_wish = (block != 0).any(dim=1, keepdim=True).to(noise_emb.dtype)
        return self.wish_embed(torch.cat([block, noise_emb], dim=1)) * has_wish

    @staticmethod
    def _run(layer, h, emb, wish=None):
        if isinstance(layer, nn.ModuleList):
            for sub in layer:
                h = sub(h, emb, wish) if isinstance(sub, ResBlock) else sub(h)
            return h
        return layer(h)
