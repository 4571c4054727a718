"""Judge clips as users would: is it the prompted object, does it move as the prompt says, does it
stay the same object, and how far are the clips from real ones as a whole.

* **Object**: in every frame the object is cut out around its centroid (``object_size`` pixels,
  enlarged to 28 x 28) and named by the shipped Fashion-MNIST image classifier.
* **Motion**: :func:`~diffusio.video.clips.motion_of` on the centroid path.
* **Consistency**: the share of clips whose frames are all named the same class.
* **Fréchet distance** on the features of the shipped space-time classifier
  (:mod:`diffusio.video.classifier`), with its real-vs-real floor at the same n.

Every score is reported beside the same score of real clips (:func:`real_floor`), because the
judges are imperfect: a score can only be read against what real data gets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from diffusio.generative.evaluation.metrics import frechet_distance
from diffusio.video.clips import MOTIONS, caption_for, centroids, motion_of, moving_clips


def object_crops(clips: np.ndarray, object_size: int = 16, out_size: int = 28) -> np.ndarray:
    """Each frame's ``object_size`` window around its brightness centroid, enlarged to ``out_size``:
    float (N*T, 1, out, out) in [-1, 1], ready for the image classifier."""
    clips = np.asarray(clips)
    n, t, h, w, _ = clips.shape
    grey = clips.mean(axis=4)
    out = np.full((n * t, object_size, object_size), 0.0, dtype=np.float32)
    for i in range(n):
        path = centroids(clips[i])
        for j in range(t):
            cx, cy = path[j]
            if not np.isfinite(cx):
                continue
            x0 = int(np.clip(round(cx - object_size / 2 + 0.5), 0, w - object_size))
            y0 = int(np.clip(round(cy - object_size / 2 + 0.5), 0, h - object_size))
            out[i * t + j] = grey[i, j, y0:y0 + object_size, x0:x0 + object_size]
    x = torch.from_numpy(out)[:, None] / 127.5 - 1
    if object_size != out_size:
        x = F.interpolate(x, size=(out_size, out_size), mode="bilinear", align_corners=False)
    return x.numpy()


def frame_classes(clips: np.ndarray, classifier, object_size: int = 16) -> np.ndarray:
    """The class the image classifier names in every frame, (N, T)."""
    n, t = np.asarray(clips).shape[:2]
    return classifier.predict(object_crops(clips, object_size)).reshape(n, t)


def judge(clips: np.ndarray, classes: np.ndarray, motions: list[str], classifier, object_size: int = 16) -> dict:
    """Scores of clips against what each was meant to show (``classes[i]``, ``motions[i]``):
    ``frame_accuracy`` (frames naming the class), ``motion_accuracy`` (paths showing the motion),
    ``consistency`` (clips naming one class throughout)."""
    named = frame_classes(clips, classifier, object_size)
    seen = [motion_of(centroids(c)) for c in clips]
    return {"n": len(clips),
            "frame_accuracy": float((named == np.asarray(classes)[:, None]).mean()),
            "motion_accuracy": float(np.mean([a == b for a, b in zip(seen, motions)])),
            "consistency": float(np.mean([len(set(row)) == 1 for row in named])),
            "motions_seen": seen}


def prompt_grid(class_names: list[str], per_prompt: int, phrases: str = "train") -> tuple[list[str], np.ndarray, list[str]]:
    """Every (class, motion) pair as a prompt, ``per_prompt`` times: prompts, class indices, motions."""
    prompts, classes, motions = [], [], []
    for c, name in enumerate(class_names):
        for k, motion in enumerate(MOTIONS):
            prompt = caption_for(name, motion, phrase=c + k, phrases=phrases)
            prompts += [prompt] * per_prompt
            classes += [c] * per_prompt
            motions += [motion] * per_prompt
    return prompts, np.array(classes), motions


def real_floor(n: int, classifier, seed: int = 1, frames: int = 16, size: int = 32, object_size: int = 16) -> dict:
    """The judges' scores on ``n`` real test-split clips: the ceiling any model can be read against."""
    data = moving_clips(n, frames=frames, size=size, object_size=object_size, split="test", seed=seed)
    return judge(data.clips, data.classes[:, 0], [m[0] for m in data.motions], classifier, object_size)


def frechet_to_real(clips: np.ndarray, clip_classifier, *, seed: int = 2, object_size: int = 16) -> dict:
    """FD between the clips and as many real test clips on the space-time classifier's features,
    and the floor: FD between two disjoint real sets of that size."""
    n, frames, size = len(clips), clips.shape[1], clips.shape[2]
    real = moving_clips(2 * n, frames=frames, size=size, object_size=object_size, split="test", seed=seed).clips
    feats = clip_classifier.features(real)
    fake = clip_classifier.features(clips)
    return {"fd": frechet_distance(feats[:n], fake), "floor": frechet_distance(feats[:n], feats[n:]), "n": n}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of uint8 arrays (over all their pixels)."""
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity (Wang et al. 2004: 7x7 uniform window, K1 0.01, K2 0.03, as
    scikit-image's default) of uint8 frames (..., H, W, C), averaged over frames and channels."""
    x = torch.from_numpy(np.asarray(a, dtype=np.float64)).reshape(-1, *np.shape(a)[-3:]).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.asarray(b, dtype=np.float64)).reshape(-1, *np.shape(b)[-3:]).permute(0, 3, 1, 2)
    x, y = x.reshape(-1, 1, *x.shape[-2:]), y.reshape(-1, 1, *y.shape[-2:])
    win, c1, c2 = 7, (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mean = lambda z: F.avg_pool2d(z, win, stride=1)  # noqa: E731
    mx, my = mean(x), mean(y)
    cov = win * win / (win * win - 1)  # sample covariance, as scikit-image
    vx, vy, vxy = cov * (mean(x * x) - mx ** 2), cov * (mean(y * y) - my ** 2), cov * (mean(x * y) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())
