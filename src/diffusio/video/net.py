"""A factorised space-time UNet (Video Diffusion Models, Ho et al. 2022).

Every frame goes through the image UNet's own pieces (residual blocks with FiLM, spatial
self-attention); after each block a temporal layer mixes each pixel's features across frames: a
1-D convolution over time, and at the coarse levels attention over time.  The temporal layers are
residual and start at zero, and a batch of single frames (T = 1) skips them, so the same network
trains jointly on clips and on still images and is also an image denoiser.

The condition (the caption's embedding) reaches every block through the FiLM embedding, the same
for every frame.  With ``frame_cond`` it also enters once per frame, beside that frame's position
(:class:`FrameCondition`): the only path on which the caption can say *where* the object is at
frame t, i.e. how it moves.  With ``whiten_cond`` it also enters whitened (:class:`CaptionWhitening`),
so that the words for the motion weigh as much as the words for the object.

Tensors are (N, C, T, H, W).

>>> net = SpaceTimeUNet(channels=1, base=8, mults=(1, 2), cond_dim=4)
>>> net(torch.zeros(2, 1, 5, 16, 16), torch.zeros(2), torch.zeros(2, 4)).shape
torch.Size([2, 1, 5, 16, 16])
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from diffusio.generative.nets.unet import FourierEmbedding, ResBlock, SelfAttention, group_norm, output_head


class TemporalMix(nn.Module):
    """Mix each pixel's features across frames: a temporal convolution, then optionally attention
    over time with sinusoidal frame positions.  Both are residual and start as the identity."""

    def __init__(self, channels: int, attention: bool, heads: int = 4):
        super().__init__()
        self.norm, self.conv = group_norm(channels), nn.Conv1d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.heads = heads
        self.attention = attention
        if attention:
            self.attn_norm = nn.LayerNorm(channels)
            self.qkv, self.proj = nn.Linear(channels, 3 * channels), nn.Linear(channels, channels)
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, h: torch.Tensor, frames: int) -> torch.Tensor:
        if frames == 1:  # still images: each frame is on its own
            return h
        nt, c, height, width = h.shape
        n = nt // frames

        def to_time(x):  # (N*T, C, H, W) -> (N*H*W, C, T)
            return x.reshape(n, frames, c, height, width).permute(0, 3, 4, 2, 1).reshape(-1, c, frames)

        def from_time(x):
            return x.reshape(n, height, width, c, frames).permute(0, 4, 3, 1, 2).reshape(nt, c, height, width)

        h = h + from_time(self.conv(F.silu(to_time(self.norm(h)))))
        if self.attention:
            seq = to_time(h).transpose(1, 2)  # (N*H*W, T, C)
            x = self.attn_norm(seq) + frame_positions(frames, c, h.device, h.dtype)
            q, k, v = self.qkv(x).reshape(len(seq), frames, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(len(seq), frames, c)
            h = h + from_time(self.proj(out).transpose(1, 2))
        return h


def frame_positions(frames: int, dim: int, device=None, dtype=None) -> torch.Tensor:
    """Sinusoidal position of each frame (T, dim), so attention over time knows the order."""
    half = dim // 2
    freqs = torch.exp(-math.log(100.0) * torch.arange(half, device=device, dtype=torch.float32) / half)
    angles = torch.arange(frames, device=device, dtype=torch.float32)[:, None] * freqs[None]
    pos = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(pos, (0, dim - 2 * half)).to(dtype)


class FrameCondition(nn.Module):
    """Per-frame embedding of (condition, frame position): an MLP over both, so it can form their
    products ("left" x "late frame").  Its output layer starts at zero, so adding it to a trained
    network changes nothing until training moves it (``video train --init --frame-cond``)."""

    POSITION_DIM = 32

    def __init__(self, cond_dim: int, emb: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(cond_dim + self.POSITION_DIM, emb), nn.SiLU(), nn.Linear(emb, emb))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, cond: torch.Tensor, frames: int) -> torch.Tensor:
        """(N, cond_dim) -> (N * frames, emb), frame-major within each clip like the UNet's rows."""
        pos = frame_positions(frames, self.POSITION_DIM, cond.device, cond.dtype)
        both = torch.cat([cond.repeat_interleave(frames, dim=0), pos.repeat(len(cond), 1)], dim=1)
        return self.mlp(both)


class CaptionWhitening(nn.Module):
    """``c -> (c - mean) @ W`` with ``W = (cov + lam * mean eigenvalue * I)^-1/2``, fitted on the
    training captions' embeddings (:meth:`fit`); the null condition (all zeros) stays zero.

    In the raw sentence embedding the motion is a small signal beside the object: MiniLM puts "a bag
    moving to the left" and "... to the right" at cosine 0.97.  Whitening scales every direction in
    which the captions vary to unit variance, so the motion's directions count as much as the
    garment's (bench/video_text_probe.py: the nearest motion centroid names 89 % of training
    captions raw, 99.9 % whitened).  The matrix is a buffer, saved with the weights."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("matrix", torch.eye(dim))

    @torch.no_grad()
    def fit(self, embeddings: torch.Tensor, lam: float = 1.0) -> None:
        if len(embeddings) < 2:
            raise ValueError("whitening needs at least two caption embeddings")
        e = embeddings.double()
        mean = e.mean(0)
        evals, evecs = torch.linalg.eigh(torch.cov((e - mean).T))
        evals = evals.clamp_min(0)
        self.mean.copy_(mean)
        self.matrix.copy_(evecs @ torch.diag((evals + lam * evals.mean()).rsqrt()) @ evecs.T)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        given = (cond != 0).any(dim=1, keepdim=True).to(cond.dtype)
        return (cond - self.mean.to(cond.dtype)) @ self.matrix.to(cond.dtype) * given


class SpaceTimeUNet(nn.Module):
    """The image UNet's layout with a :class:`TemporalMix` after every residual block: temporal
    attention at ``time_attn_levels``, spatial attention at ``attn_levels``."""

    def __init__(self, channels: int = 1, base: int = 32, mults: tuple[int, ...] = (1, 2, 2), blocks: int = 1,
                 attn_levels: tuple[int, ...] = (2,), time_attn_levels: tuple[int, ...] = (1, 2),
                 cond_dim: int = 0, dropout: float = 0.0, frame_cond: bool = False, whiten_cond: bool = False):
        super().__init__()
        if (frame_cond or whiten_cond) and not cond_dim:
            raise ValueError("frame_cond or whiten_cond needs a condition (cond_dim > 0)")
        self.config = dict(channels=channels, base=base, mults=list(mults), blocks=blocks,
                           attn_levels=list(attn_levels), time_attn_levels=list(time_attn_levels),
                           cond_dim=cond_dim, dropout=dropout, frame_cond=bool(frame_cond))
        if whiten_cond:  # recorded only when used, so models from before the option keep their config
            self.config["whiten_cond"] = True
        emb = 4 * base
        self.noise_embed = nn.Sequential(FourierEmbedding(base), nn.Linear(base, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.cond_embed = (nn.Sequential(nn.Linear(cond_dim, emb), nn.SiLU(), nn.Linear(emb, emb))
                           if cond_dim else None)
        self.frame_embed = FrameCondition(cond_dim, emb) if frame_cond else None
        self.whiten_embed = None
        if whiten_cond:  # a second path for the caption, whitened; its output layer starts at zero
            self.whiten_embed = nn.Sequential(CaptionWhitening(cond_dim), nn.Linear(cond_dim, emb), nn.SiLU(),
                                              nn.Linear(emb, emb))
            nn.init.zeros_(self.whiten_embed[-1].weight)
            nn.init.zeros_(self.whiten_embed[-1].bias)
        self.stem = nn.Conv2d(channels, base, 3, padding=1)
        self.down, widths, width = nn.ModuleList(), [base], base
        for level, mult in enumerate(mults):
            for _ in range(blocks):
                self.down.append(self._stage(width, base * mult, emb, dropout, level, attn_levels, time_attn_levels))
                width = base * mult
                widths.append(width)
            if level < len(mults) - 1:
                self.down.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
                widths.append(width)
        self.mid = self._stage(width, width, emb, dropout, len(mults) - 1, (len(mults) - 1,), (len(mults) - 1,))
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(mults))):
            for _ in range(blocks + 1):
                self.up.append(self._stage(width + widths.pop(), base * mult, emb, dropout, level, attn_levels,
                                           time_attn_levels))
                width = base * mult
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.head = output_head(width, channels)

    @staticmethod
    def _stage(cin, cout, emb, dropout, level, attn_levels, time_attn_levels) -> nn.ModuleList:
        layers = [ResBlock(cin, cout, emb, dropout), TemporalMix(cout, attention=level in time_attn_levels)]
        if level in attn_levels:
            layers.append(SelfAttention(cout))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        n, c, frames, height, width = x.shape
        emb = self.noise_embed(c_noise.reshape(-1).expand(n))
        if self.cond_embed is not None:
            if cond is None:  # "no condition" is the all-zero vector that condition dropout trained
                cond = x.new_zeros(n, self.config["cond_dim"])
            emb = emb + self.cond_embed(cond)
            if self.whiten_embed is not None:
                emb = emb + self.whiten_embed(cond)
        emb = emb.repeat_interleave(frames, dim=0)  # one row per frame
        if self.frame_embed is not None:
            emb = emb + self.frame_embed(cond, frames)
        h = self.stem(x.transpose(1, 2).reshape(n * frames, c, height, width))
        skips = [h]
        for layer in self.down:
            h = self._run(layer, h, emb, frames)
            skips.append(h)
        h = self._run(self.mid, h, emb, frames)
        for layer in self.up:
            if isinstance(layer, nn.Upsample):
                h = layer(h)
                continue
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:  # odd sizes: match the skip
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = self._run(layer, torch.cat([h, skip], dim=1), emb, frames)
        out = self.head(h)
        return out.reshape(n, frames, c, height, width).transpose(1, 2)

    @staticmethod
    def _run(layer, h, emb, frames):
        if not isinstance(layer, nn.ModuleList):
            return layer(h)
        for sub in layer:
            if isinstance(sub, ResBlock):
                h = sub(h, emb)
            elif isinstance(sub, TemporalMix):
                h = sub(h, frames)
            else:
                h = sub(h)
        return h
