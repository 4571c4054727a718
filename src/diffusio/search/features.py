"""Diffusion features of images, and the denoising error of an image under a text.

**Features.**  Every image is noised once to a fixed level ``SIGMA`` with one fixed, seeded noise
image (the same for every image, so a feature depends on nothing but the image and the model), and
the UNet is run *unconditionally* (the all-zero condition that classifier-free guidance trained)
up to its first decoder block at the lowest resolution (7x7 for 28x28 images).  That block's
activations, average-pooled to a 3x3 grid and L2-normalised, are the feature: 96 x 9 = 864 numbers
for the shipped Fashion-MNIST models.  Stopping there skips the full-resolution decoder, which is
most of the network's cost (see docs/search.md for the layers and noise levels tried and how they
were chosen on a validation split of the *training* set).  The class head reads the same block
before pooling (96 x 7 x 7 = 4,704 numbers, L2-normalised): where a garment's parts sit tells the
classes apart better than the 3x3 averages do (:meth:`DiffusionFeatures.embed_with_block`).

**Text score.**  How well a text explains an image is the diffusion classifier's score (Li et al.
2023; Clark & Jaini 2023): the share of the unconditional denoising error that the text removes,
``1 - err(x | text) / err(x)``, averaged over a few fixed noise levels and noises; larger = the text
explains the image better (the ratio, unlike the plain difference, does not favour images with
much ink, whose errors are large under any text).

>>> import numpy as np
>>> fx = DiffusionFeatures.load("fashion")
>>> images = np.zeros((2, 1, 28, 28), np.float32) - 1
>>> fx.embed(images).shape
(2, 864)
>>> round(float(np.linalg.norm(fx.embed(images)[0])), 4)
1.0
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from diffusio.errors import UsageError

RECIPE_VERSION = 2   # bump when the features below change: old indexes are then refused (2: head on the block)
SIGMA = 0.5          # noise level of the features (chosen on a validation split of the training set)
POOL = 3             # adaptive average pooling grid of the chosen block
NOISE_SEED = 0       # the one fixed noise image
BATCH = 256          # images per network call
RERANK_SIGMAS = (0.7, 2.5)  # noise levels of the text score, one fixed noise each (chosen like SIGMA)


def recipe() -> dict:
    """What the features are made of; an index records it and refuses queries under another."""
    return {"version": RECIPE_VERSION, "sigma": SIGMA, "block": "first decoder block (lowest resolution)",
            "pool": POOL, "noise_seed": NOISE_SEED, "condition": "none (all-zero)", "normalise": "l2",
            "class_head_input": "the block before pooling, l2-normalised"}


def model_digest(model) -> str:
    """sha256 of a loaded model's weights file (what an index is tied to)."""
    path = Path(model.path) / "model.safetensors"
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise UsageError(f"cannot read the model weights {path}: {err}") from None
    return digest.hexdigest()


class DiffusionFeatures:
    """A loaded diffusio image model seen as a feature extractor and a text scorer."""

    def __init__(self, model, name: str):
        from diffusio.generative.nets.unet import UNet

        if not isinstance(model.denoiser.net, UNet):
            raise UsageError(f"search needs a diffusio UNet model; {name} has a {type(model.denoiser.net).__name__}")
        self.model, self.name = model, str(name)
        self.denoiser, self.net = model.denoiser, model.denoiser.net

    @classmethod
    def load(cls, name_or_path: str | Path = "fashion") -> "DiffusionFeatures":
        from diffusio.generative.checkpoint.models import load_model

        return cls(load_model(name_or_path), str(name_or_path))

    @cached_property
    def digest(self) -> str:
        return model_digest(self.model)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.model.image_shape

    @cached_property
    def _noise(self) -> torch.Tensor:
        return torch.randn((1, *self.image_shape), generator=torch.Generator().manual_seed(NOISE_SEED))

    @property
    def dim(self) -> int:
        return self.net.config["base"] * self.net.config["mults"][-1] * POOL * POOL

    @cached_property
    def block_dim(self) -> int:
        """Numbers in the block before pooling (what the class head reads): 4,704 for ``fashion``."""
        with torch.inference_mode():
            return int(np.prod(self._block(torch.zeros((1, *self.image_shape))).shape[1:]))

    def _block(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the first decoder block for clean images ``x`` noised to ``SIGMA``."""
        sigma = torch.full((len(x),), SIGMA)
        x_in = (x + SIGMA * self._noise) * self.denoiser.c_in(sigma.reshape(-1, 1, 1, 1))
        return self.net.decoder_features(x_in, self.denoiser.c_noise(sigma), stages=1)

    def embed(self, images: np.ndarray, progress=None) -> np.ndarray:
        """float32 ``[N, dim]`` unit rows for float images ``[N, C, H, W]`` in [-1, 1].

        ``progress``: called with the number of images done after every batch.
        """
        return self._forward(images, progress, None)[0]

    def embed_with_block(self, images: np.ndarray, progress=None, *, block_map=None
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The features of :meth:`embed` and, from the same pass, the block before pooling as float32
        ``[N, block_dim]`` unit rows (what the class head reads).  ``block_map``: a function applied
        to each batch's block rows, whose outputs are returned stacked instead (the index keeps only
        the class posterior, not 4,704 numbers an image)."""
        return self._forward(images, progress, block_map or (lambda rows: rows))

    def _forward(self, images: np.ndarray, progress, block_map) -> tuple[np.ndarray, np.ndarray | None]:
        """One pass in batches: pooled unit features, and ``block_map`` of the unit block rows (None: skipped)."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise UsageError(f"images must be [N, {', '.join(map(str, self.image_shape))}], got {images.shape}")
        out, mapped = np.zeros((len(images), self.dim), np.float32), []
        with torch.inference_mode():
            for start in range(0, len(images), BATCH):
                x = torch.from_numpy(images[start:start + BATCH])
                activations = self._block(x)
                pooled = F.adaptive_avg_pool2d(activations, POOL).flatten(1)
                out[start:start + len(x)] = F.normalize(pooled, dim=1).numpy()
                if block_map is not None:
                    mapped.append(block_map(F.normalize(activations.flatten(1), dim=1).numpy()))
                if progress is not None:
                    progress(len(x))
        if block_map is None:
            return out, None
        return out, np.concatenate(mapped) if mapped else block_map(np.zeros((0, self.block_dim), np.float32))

    # ---------------------------------------------------------- text
    def text_condition(self, prompt: str) -> torch.Tensor:
        """The model's condition vector for a prompt (MiniLM, as generation uses it)."""
        from diffusio.generative.pipeline import Generator

        if not isinstance(prompt, str) or not prompt.strip():
            raise UsageError("empty query; give some text, e.g. \"running shoes\", or --image FILE")
        return Generator(self.model).condition(1, prompt)[0]

    def class_conditions(self) -> tuple[list[str], torch.Tensor] | None:
        """The model's class names and their condition vectors, if it was trained with classes."""
        names, emb = self.model.class_names, self.model.class_embeddings
        if not names or emb is None or self.model.cond_kind != "text":
            return None
        return list(names), emb.float()

    def text_scores(self, images: np.ndarray, cond: torch.Tensor) -> np.ndarray:
        """Diffusion-classifier score of each image under ``cond``: mean over ``RERANK_SIGMAS`` of
        ``1 - ||D(x + s*eps, s, cond) - x||^2 / ||D(x + s*eps, s) - x||^2`` (larger = better match)."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if len(x) == 0:
            return np.zeros(0)
        gen = torch.Generator().manual_seed(NOISE_SEED + 1)
        total = torch.zeros(len(x))
        with torch.inference_mode():
            for sigma in RERANK_SIGMAS:
                noisy = x + sigma * torch.randn((1, *x.shape[1:]), generator=gen)
                both = torch.cat([noisy, noisy])
                conds = torch.cat([torch.zeros(len(x), cond.shape[-1]), cond.expand(len(x), -1)])
                out = self.denoiser(both, sigma, conds)
                err = ((out - torch.cat([x, x])) ** 2).flatten(1).mean(1)
                total += 1 - err[len(x):] / err[:len(x)].clamp_min(1e-12)
        return (total / len(RERANK_SIGMAS)).numpy().astype(np.float64)

    def generate(self, cond: torch.Tensor, n: int, steps: int, seed: int) -> np.ndarray:
        """``n`` images (float, [-1, 1]) sampled under one condition vector (no watermark: they
        never leave the process)."""
        from diffusio.generative.core.sampling import sample

        with torch.inference_mode():
            images = sample(self.denoiser, n, self.model.config["image"], cond=cond.expand(n, -1), steps=steps,
                            sampler="dpmpp-2m", guidance=self.sampling_guidance(), seed=seed, schedule="karras")
        return images.numpy()

    def sampling_guidance(self) -> float:
        """The classifier-free guidance :meth:`generate` samples at: the model's default."""
        from diffusio.generative.pipeline import Generator

        return float(Generator(self.model).defaults["guidance"])
