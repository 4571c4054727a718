"""Post-hoc EMA (Karras et al., 2024, "Analyzing and Improving the Training Dynamics of Diffusion
Models", EDM2, section 3): choose the length of the weight average *after* training.

During training two power-function EMAs of the weights are kept (relative widths 0.05 and 0.10,
as in EDM2) and saved at every checkpoint.  The averaging profile of a power-function EMA at step
``T`` is ``p(t) = (gamma + 1) t**gamma / T**(gamma + 1)`` on ``[0, T]``; any other profile is
approximated by the least-squares mix of the saved ones, and the same mix of their weights is the
EMA that was never tracked.

>>> gamma = sigma_rel_to_gamma(0.10)
>>> round(gamma, 2)
6.94
>>> w = solve_coefficients([500, 1000], [gamma, gamma], 1000, gamma)
>>> [abs(round(float(x), 6)) for x in w]   # a tracked profile is rebuilt by itself
[0.0, 1.0]
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import torch

from diffusio.errors import UsageError

EDM2_PROFILES = (0.05, 0.10)   # the relative widths EDM2 tracks; any width near them can be rebuilt
SNAPSHOT_DIR = "phema"
_LARGEST = math.sqrt(1 / 12)   # sigma_rel of the plain average of every step (gamma = 0)
_SMALLEST = 0.001              # narrower is the last weights alone, and the exponent overflows
_NAME = re.compile(r"^phema-(\d\.\d{3})-(\d{9})\.safetensors$")


def sigma_rel_to_gamma(sigma_rel: float) -> float:
    """The exponent of the power-function EMA whose profile has standard deviation ``sigma_rel``
    (relative to the training length): the root of sigma_rel**2 = (g+1) / ((g+2)**2 (g+3))."""
    if not _SMALLEST <= sigma_rel < _LARGEST:
        raise UsageError(f"--sigma-rel must be in [{_SMALLEST}, {_LARGEST:.3f}) (the upper end is the plain "
                         f"average of all steps), got {sigma_rel}")
    s = sigma_rel ** -2
    return float(np.roots([1.0, 7.0, 16.0 - s, 12.0 - s]).real.max())


def _profile_dot(t_a, g_a, t_b, g_b):
    """<p_a, p_b> for power-function profiles ending at steps t_a, t_b (closed form, EDM2 eq. 6)."""
    t_a, g_a, t_b, g_b = (np.asarray(v, dtype=np.float64) for v in (t_a, g_a, t_b, g_b))
    exponent = np.where(t_a < t_b, g_b, -g_a)
    return (g_a + 1) * (g_b + 1) * (t_a / t_b) ** exponent / ((g_a + g_b + 1) * np.maximum(t_a, t_b))


def _normal_equations(steps: list[int], gammas: list[float], step: int, gamma: float):
    """Gram matrix of the saved profiles and their inner products with the target profile."""
    t, g = np.asarray(steps, dtype=np.float64)[:, None], np.asarray(gammas, dtype=np.float64)[:, None]
    return _profile_dot(t, g, t.T, g.T), _profile_dot(t[:, 0], g[:, 0], float(step), gamma)


def solve_coefficients(steps: list[int], gammas: list[float], step: int, gamma: float) -> np.ndarray:
    """Weights of the saved profiles (ending at ``steps`` with exponents ``gammas``) whose mix is
    closest, in L2, to the profile of exponent ``gamma`` ending at ``step``."""
    gram, target = _normal_equations(steps, gammas, step, gamma)
    return np.linalg.lstsq(gram, target, rcond=None)[0]


def profile_error(steps: list[int], gammas: list[float], step: int, gamma: float, weights: np.ndarray) -> float:
    """Relative L2 error of the rebuilt profile: 0 is exact; large means the saved EMAs cannot
    express the asked-for width (too narrow or too wide for them, or too few snapshots)."""
    gram, target = _normal_equations(steps, gammas, step, gamma)
    norm = float(_profile_dot(step, gamma, step, gamma))
    err = norm - 2 * weights @ target + weights @ gram @ weights
    return math.sqrt(max(float(err), 0.0) / norm)


class PowerEMA:
    """Power-function EMAs of a network's weights, one per relative width.

    After step ``t`` (counted from 1) each average moves towards the weights by ``1 - beta_t`` with
    ``beta_t = (1 - 1/t) ** (gamma + 1)``: the first step replaces it, later ones matter less and
    less in proportion, so its profile keeps the same *relative* width however long the run.
    """

    def __init__(self, net: torch.nn.Module, sigma_rels: tuple[float, ...] = EDM2_PROFILES):
        self.sigma_rels = tuple(sigma_rels)
        self.gammas = [sigma_rel_to_gamma(s) for s in self.sigma_rels]
        self.averages = [{k: v.detach().clone() for k, v in net.state_dict().items()} for _ in self.gammas]

    @torch.no_grad()
    def update(self, net: torch.nn.Module, step: int) -> None:
        state = net.state_dict()
        for gamma, average in zip(self.gammas, self.averages):
            beta = (1 - 1 / step) ** (gamma + 1)
            for name, value in state.items():
                if value.is_floating_point():
                    average[name].lerp_(value, 1 - beta)
                else:
                    average[name].copy_(value)

    def tensors(self) -> dict[str, torch.Tensor]:
        """For the run state (resume continues the same averages)."""
        return {f"phema.{i}.{k}": v for i, average in enumerate(self.averages) for k, v in average.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        for i, average in enumerate(self.averages):
            for name in average:
                average[name].copy_(tensors[f"phema.{i}.{name}"])

    def snapshot(self, out: Path, step: int) -> None:
        from diffusio.generative.checkpoint.files import atomic_save_tensors

        folder = Path(out) / SNAPSHOT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for sigma_rel, average in zip(self.sigma_rels, self.averages):
            # the name carries step and width; one metadata key keeps the bytes deterministic
            # (safetensors writes several keys in hash order)
            atomic_save_tensors(folder / f"phema-{sigma_rel:.3f}-{step:09d}.safetensors", average,
                                metadata={"format": "diffusio-phema"})


def list_snapshots(run: str | Path) -> list[tuple[int, float, Path]]:
    """(step, sigma_rel, file) of every saved average of a run trained with ``--posthoc-ema``."""
    folder = Path(run) / SNAPSHOT_DIR
    found = []
    for path in sorted(folder.glob("phema-*.safetensors")) if folder.is_dir() else []:
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(2)), float(match.group(1)), path))
    if not found:
        raise UsageError(f"{run} has no post-hoc EMA snapshots ({folder}/phema-*.safetensors); "
                         "train with --posthoc-ema to keep them")
    return sorted(found)


def rebuild(run: str | Path, sigma_rel: float, step: int | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """The weights of the EMA of width ``sigma_rel`` at ``step`` (default: the last snapshot),
    rebuilt from the run's snapshots, and a record (snapshots used, profile error)."""
    from diffusio.generative.checkpoint.files import load_tensors

    gamma = sigma_rel_to_gamma(sigma_rel)
    snaps = list_snapshots(run)
    last = snaps[-1][0]
    step = last if step is None else step
    if not snaps[0][0] <= step <= last:
        raise UsageError(f"--step must be between the first and last snapshot ({snaps[0][0]}..{last}), got {step}")
    used = [s for s in snaps if s[0] <= step]
    steps, gammas = [s[0] for s in used], [sigma_rel_to_gamma(s[1]) for s in used]
    weights = solve_coefficients(steps, gammas, step, gamma)
    out: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for w, (_, _, path) in zip(weights, used):  # summed in float64: the weights of a mix can be large and of both signs
        for name, value in load_tensors(path).items():
            dtypes[name] = value.dtype
            if not value.is_floating_point():
                out[name] = value
            else:
                out[name] = out.get(name, 0.0) + float(w) * value.double()
    out = {k: v.to(dtypes[k]) for k, v in out.items()}
    record = {"kind": "posthoc", "sigma_rel": sigma_rel, "step": step, "snapshots": len(used),
              "profile_error": round(profile_error(steps, gammas, step, gamma, weights), 5)}
    return out, record


def posthoc_ema(run: str | Path, sigma_rel: float, out: str | Path, step: int | None = None) -> dict:
    """Write a model directory whose weights are the post-hoc EMA of width ``sigma_rel`` of ``run``.

    ``run`` is a training run directory made with ``--posthoc-ema``; ``out`` must not hold a model.
    Returns the record stored in the new model's config (``ema``): width, step, snapshots used and
    the relative error of the rebuilt averaging profile.
    """
    from diffusio.generative.checkpoint.files import load_config, load_tensors, save_model

    run, out = Path(run), Path(out)
    if any((out / name).exists() for name in ("model.safetensors", "config.json")):
        raise UsageError(f"{out} already holds a model; writing there would overwrite it: choose a new --out")
    config = load_config(run)
    weights, record = rebuild(run, sigma_rel, step)
    saved = load_tensors(run / "model.safetensors")
    tensors = {k: v for k, v in saved.items() if not k.startswith("net.")}
    if set(weights) != {k[4:] for k in saved if k.startswith("net.")}:
        raise UsageError(f"{run}: the snapshots do not hold the network of its model.safetensors; "
                         "they belong to another run")
    tensors.update({f"net.{k}": v for k, v in weights.items()})
    config = {k: v for k, v in config.items() if k not in ("format", "version")}
    save_model(out, {**config, "ema": record}, tensors)
    return record
