"""Classifier-free guidance (Ho & Salimans 2022) as a denoiser that wraps a denoiser.

``D_w(x) = D(x, null) + w * (D(x, cond) - D(x, null))``: w = 1 is plain
conditional sampling, w = 0 unconditional, w > 1 sharper adherence.  The null
condition is the all-zero vector the model saw under condition dropout.

Models trained with attributes (:mod:`attributes`) end their condition with an attribute block,
left out (zero) as a unit during training.  ``attr_scale`` guides that block on its own:

``D(x, null) + w * (D(x, text) - D(x, null)) + w_a * (D(x, text + attrs) - D(x, text))``

With ``w_a = w`` this is plain guidance on the whole condition; a larger ``w_a`` follows the
attribute wishes more closely at 1.5x the network evaluations (docs/editing.md measures it).
Wishes on shape (width, height) pull an image away from its class's usual outline; ``wish_scale``
guides the prompt of the rows that carry wishes at that scale instead of ``w``, at every noise
level, to hold the class against them (docs/editing.md, "The prompt held under wishes").

Guidance in a limited interval (Kynkaanniemi et al. 2024): ``interval=(lo, hi)`` guides only
where ``lo < sigma <= hi`` and samples plain conditionally elsewhere.  Guidance at high noise
levels is what collapses the samples of one prompt onto a few prototypes; at low ones it does
little but sharpen; in the middle it decides the class.  Outside the interval a step costs one
network pass instead of two.  Attribute wishes stay guided outside it (``D(x, text) + w_a *
(D(x, text + attrs) - D(x, text))``): width and height are settled at high noise levels, and a
wish is an explicit request, not a prototype to avoid.

>>> from diffusio.generative.core.denoiser import EDMDenoiser
>>> D = EDMDenoiser(lambda x, c_noise, cond: cond[:, :1, None, None].expand_as(x))
>>> g = CFGDenoiser(D, 3.0, interval=(0.5, 5.0))
>>> x, c = torch.zeros(1, 1, 2, 2), torch.ones(1, 4)
>>> bool(torch.equal(g(x, 10.0, c), D(x, 10.0, c)))     # above the interval: conditional only
True
>>> bool(torch.equal(g(x, 1.0, c), D(x, 1.0, c)))       # inside: guided, so it differs
False

Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad version of itself"):
``D_w(x | c) = D_bad(x | c) + w * (D(x | c) - D_bad(x | c))``, where the guide ``D_bad`` is a
weaker version of the same model (less trained, or smaller) with the same condition.  The two
share most of their errors' directions, so extrapolating away from the guide corrects the
model's own blur without pulling every sample of a prompt towards one prototype, as CFG does.
The two compose: ``CFGDenoiser(AutoGuidance(D, D_bad, w), cfg)`` guides the autoguided model.
Like CFG it can be limited to an interval of noise levels: on ``fashion`` the guide's pull at the
highest ones (sigma > 4), where outlines are chosen, costs FD, and at low ones it buys recall
(docs/benchmarks.md, "Autoguidance in an interval of noise levels").

Classifier guidance (Dhariwal & Nichol 2021) adds the gradient of a noise-aware classifier's
log-probability of what the row asks for, as a score:

``D'(x, sigma) = D(x, sigma) + w s sigma^2 grad_x log sum_k (r_k / s) p(k | x, sigma)``,  ``s = sum_k r_k``

``r`` (one row per image) says how much each class is wished for: a caption reader's
probabilities, a one-hot label, or zeros (not steered).  Unlike CFG it does not sharpen the
model's own conditional toward a prototype: it pushes each sample only as far as it takes for the
classifier to see the class, so samples that already show it keep their variety
(docs/benchmarks.md, "Classifier guidance").  It wraps the CFG denoiser, so the three compose.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from diffusio.errors import UsageError
from diffusio.generative.core.denoiser import expand_rows


class CFGDenoiser(nn.Module):
    def __init__(self, denoiser: nn.Module, scale: float, attr_scale: float | None = None, attr_dims: int = 0,
                 interval: tuple[float, float] | None = None, wish_scale: float | None = None):
        super().__init__()
        check_scale(scale)
        if attr_scale is not None:
            check_scale(attr_scale, "attribute guidance")
        if wish_scale is not None:
            check_scale(wish_scale, "attr_prompt_guidance")
        self.interval = check_interval(interval)
        self.inner, self.scale = denoiser, float(scale)
        self.attr_scale = None if attr_scale is None or not attr_dims else float(attr_scale)
        self.wish_scale = None if self.attr_scale is None or wish_scale is None else float(wish_scale)
        self.attr_dims = int(attr_dims)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        if cond is not None and self.wish_scale is not None and self._wished(cond).any():
            return self._prompt_held(x, sigma, cond)
        return _within(self.interval if cond is not None else None, x, sigma,
                       lambda: self._guided(x, sigma, cond), lambda: self._outside(x, sigma, cond))

    def _wished(self, cond):
        """Which rows carry attribute wishes."""
        return cond[:, -self.attr_dims:].any(1)

    def _prompt_held(self, x, sigma, cond):
        """Rows with wishes: the prompt guided at ``wish_scale`` at every noise level; the others as
        without (``scale`` inside the interval, unguided outside; their attribute term is zero)."""
        wished = self._wished(cond)
        inside = _inside(self.interval, sigma, x) if self.interval is not None else torch.ones_like(wished)
        return self._with_attributes(x, sigma, cond, torch.where(wished, self.wish_scale,
                                                                 torch.where(inside, self.scale, 1.0)))

    def _outside(self, x, sigma, cond):
        """Outside the interval: the prompt unguided, attribute wishes still guided."""
        if self.attr_scale is not None and self._wished(cond).any():
            text = cond.clone()
            text[:, -self.attr_dims:] = 0
            text_only, full = self._batched(x, sigma, [text, cond])
            return text_only + self.attr_scale * (full - text_only)
        return self.inner(x, sigma, cond)

    def _guided(self, x, sigma, cond):
        if cond is not None and self.attr_scale is not None and self._wished(cond).any():
            return self._with_attributes(x, sigma, cond)
        if cond is None or self.scale == 1.0:
            return self.inner(x, sigma, cond)
        if self.scale == 0.0:
            return self.inner(x, sigma, torch.zeros_like(cond))
        uncond, conditional = self._batched(x, sigma, [torch.zeros_like(cond), cond])
        return uncond + self.scale * (conditional - uncond)

    def _with_attributes(self, x, sigma, cond, prompt_scale: float | torch.Tensor | None = None):
        """The prompt guided at ``prompt_scale`` (``scale``, or one per row), the wishes at ``attr_scale``."""
        text = cond.clone()
        text[:, -self.attr_dims:] = 0  # attributes left out, as in training
        uncond, text_only, full = self._batched(x, sigma, [torch.zeros_like(cond), text, cond])
        w = self.scale if prompt_scale is None else expand_rows(torch.as_tensor(prompt_scale), x).to(x.dtype)
        return uncond + w * (text_only - uncond) + self.attr_scale * (full - text_only)

    def _batched(self, x, sigma, conds):
        """One network call for several conditions of the same batch."""
        sigma = _per_row(sigma, x)
        k = len(conds)
        return self.inner(torch.cat([x] * k), torch.cat([sigma] * k), torch.cat(conds)).chunk(k)


class AutoGuidance(nn.Module):
    """``D_bad(x | c) + scale * (D(x | c) - D_bad(x | c))``: two network passes a call (see above);
    with an ``interval`` (lo, hi), only where ``lo < sigma <= hi``, and ``D`` alone (one pass) elsewhere.

    >>> from diffusio.generative.core.denoiser import EDMDenoiser
    >>> D = EDMDenoiser(lambda x, c_noise, cond: torch.ones_like(x))
    >>> bad = EDMDenoiser(lambda x, c_noise, cond: torch.zeros_like(x))
    >>> g = AutoGuidance(D, bad, 2.0, interval=(0.0, 1.0))
    >>> x = torch.zeros(1, 1, 2, 2)
    >>> bool(torch.equal(g(x, 0.5), 2 * D(x, 0.5) - bad(x, 0.5))), bool(torch.equal(g(x, 5.0), D(x, 5.0)))
    (True, True)
    """

    def __init__(self, denoiser: nn.Module, guide: nn.Module, scale: float,
                 interval: tuple[float, float] | None = None):
        super().__init__()
        self.inner, self.guide, self.scale = denoiser, guide, check_scale(scale, "autoguidance")
        self.interval = check_interval(interval, "autoguidance_interval")
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        return _within(self.interval, x, sigma,
                       lambda: self._guided(x, sigma, cond), lambda: self.inner(x, sigma, cond))

    def _guided(self, x, sigma, cond):
        bad = self.guide(x, sigma, cond)
        return bad + self.scale * (self.inner(x, sigma, cond) - bad)


class ClassifierGuidance(nn.Module):
    """``D + scale * s * sigma^2 * grad log sum_k (r_k / s) p(k | x, sigma)`` (see above), for
    ``wishes`` r (N, K) >= 0 and ``classifier(x, sigma) -> logits (N, K)``; only where ``lo <
    sigma <= hi`` when an ``interval`` is given.  Gradients are taken in float32 even inside
    ``torch.inference_mode`` or bfloat16 autocast.

    >>> from diffusio.generative.core.denoiser import EDMDenoiser
    >>> D = EDMDenoiser(lambda x, c_noise, cond: torch.zeros_like(x))
    >>> clf = lambda x, sigma: torch.stack([x.mean((1, 2, 3)), -x.mean((1, 2, 3))], 1)  # class 0: bright
    >>> g = ClassifierGuidance(D, clf, torch.tensor([[1.0, 0.0], [0.0, 0.0]]), scale=2.0)
    >>> out = g(torch.zeros(2, 1, 2, 2), 1.0)
    >>> bool((out[0] > 0).all()), bool((out[1] == 0).all())   # row 0 pushed brighter; row 1 not steered
    (True, True)
    """

    def __init__(self, denoiser: nn.Module, classifier, wishes: torch.Tensor, scale: float,
                 interval: tuple[float, float] | None = None):
        super().__init__()
        self.inner, self.classifier = denoiser, classifier
        wishes = torch.as_tensor(wishes, dtype=torch.float32).clone()
        if wishes.ndim != 2 or (wishes < 0).any() or not torch.isfinite(wishes).all():
            raise UsageError(f"classifier guidance wishes must be an (N, classes) array of numbers >= 0, "
                             f"got shape {tuple(wishes.shape)}")
        total = wishes.sum(1, keepdim=True)
        self.strength = check_scale(scale, "classifier guidance") * total[:, 0]
        self.log_weights = (wishes / total.clamp_min(1e-12)).clamp_min(1e-12).log()
        self.interval = check_interval(interval)
        self.sigma_min, self.sigma_max = denoiser.sigma_min, denoiser.sigma_max

    def forward(self, x, sigma, cond=None):
        d = self.inner(x, sigma, cond)
        strength = self.strength
        if self.interval is not None:
            strength = strength * _inside(self.interval, sigma, x).float()
        sigma = _per_row(sigma, x)
        if not strength.any():
            return d
        with torch.inference_mode(False), torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
            xg = x.detach().float().clone().requires_grad_(True)  # clones: inference tensors cannot be saved
            log_p = torch.log_softmax(self.classifier(xg, sigma.detach().float().clone()).float(), dim=1)
            wished = torch.logsumexp(log_p + self.log_weights.clone(), dim=1)
            grad, = torch.autograd.grad(wished.sum(), xg)
        return d + expand_rows(strength * sigma.float() ** 2, x).to(d.dtype) * grad.to(d.dtype)


def _inside(interval: tuple[float, float], sigma, x: torch.Tensor) -> torch.Tensor:
    """Which rows of ``x`` are at a noise level in ``(lo, hi]``."""
    sigma = _per_row(sigma, x)
    lo, hi = interval
    return (sigma > lo) & (sigma <= hi)


def _within(interval: tuple[float, float] | None, x: torch.Tensor, sigma, guided, outside) -> torch.Tensor:
    """``guided()`` for the rows whose noise level is inside ``interval`` (all rows when it is None),
    ``outside()`` for the others; each is called only when some row needs it."""
    if interval is None:
        return guided()
    inside = _inside(interval, sigma, x)
    if not inside.any():
        return outside()
    if inside.all():
        return guided()
    return torch.where(expand_rows(inside, x), guided(), outside())  # rows at different noise levels


def _per_row(sigma, x: torch.Tensor) -> torch.Tensor:
    """``sigma`` (a number or one per row) as one value per row of ``x``."""
    return torch.as_tensor(sigma, dtype=x.dtype).reshape(-1).expand(x.shape[0])


MAX_SCALE = 100.0  # far beyond any useful guidance: larger scales only saturate every pixel


def check_scale(scale: float, name: str = "guidance") -> float:
    """A guidance scale in [0, MAX_SCALE]; anything else would give black or NaN images."""
    if not (isinstance(scale, (int, float)) and 0 <= scale <= MAX_SCALE):
        raise UsageError(f"{name} must be a number in [0, {MAX_SCALE:g}], got {scale!r}")
    return float(scale)


def check_interval(interval: tuple[float, float] | str | None,
                   name: str = "guidance_interval") -> tuple[float, float] | None:
    """``(lo, hi)`` with ``0 <= lo < hi``, or None (guide at every noise level); ``"all"`` (as on the
    command line, and in a config, which cannot hold infinity) is ``(0, inf)``.

    >>> check_interval("all"), check_interval([0.3, 5])
    ((0.0, inf), (0.3, 5.0))
    """
    if interval is None:
        return None
    if isinstance(interval, str) and interval.strip().lower() == "all":
        return 0.0, math.inf
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be two numbers (lo, hi), got {interval!r}") from None
    if not (math.isfinite(lo) and 0 <= lo < hi) or math.isnan(hi):
        raise UsageError(f"{name} must satisfy 0 <= lo < hi, got ({lo}, {hi})")
    return lo, hi


def limited_interval(interval: tuple[float, float] | str | None, name: str = "guidance_interval"):
    """:func:`check_interval`, with one that holds every noise level (``(0, inf)``, ``"all"``) as None:
    what a guidance wrapper takes."""
    interval = check_interval(interval, name)
    return None if interval is None or (interval[0] == 0 and interval[1] == math.inf) else interval
