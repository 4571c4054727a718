"""Post-hoc EMA (EDM2): power-function EMAs against their closed form, rebuilding an untracked width,
and the training run / CLI path (snapshots, resume, a loadable model)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.generative.checkpoint.models import load_model
from diffusio.generative.training.posthoc_ema import (PowerEMA, posthoc_ema, profile_error, rebuild,
                                                      sigma_rel_to_gamma, solve_coefficients)
from diffusio.generative.training.trainer import TrainConfig, Trainer, train

TINY = dict(data="digits", batch_size=16, base=8, mults=(1, 2), attn_levels=(), cond="class",
            quiet=True, lr=2e-3, warmup=5, threads=1)


def test_gamma_matches_the_width_formula_and_edm2s_values():
    for sigma in (0.01, 0.05, 0.1, 0.2, 0.28):
        g = sigma_rel_to_gamma(sigma)
        assert np.sqrt((g + 1) / ((g + 2) ** 2 * (g + 3))) == pytest.approx(sigma, rel=1e-9)
    assert sigma_rel_to_gamma(0.05) == pytest.approx(16.97, abs=0.01)  # EDM2, section 3.1
    assert sigma_rel_to_gamma(0.10) == pytest.approx(6.94, abs=0.01)
    for bad in (0.0, 1e-300, -0.1, 0.3, float("nan")):
        with pytest.raises(UsageError, match="--sigma-rel"):
            sigma_rel_to_gamma(bad)


class Scalar(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))


def run_sequence(values, widths, every):
    """Feed weights values[0], values[1], ... (one per step) to PowerEMAs; snapshots every ``every``."""
    net = Scalar()
    ema = PowerEMA(net, widths)
    snaps = []
    for t, v in enumerate(values, start=1):
        net.w.data.copy_(v)
        ema.update(net, t)
        if t % every == 0:
            snaps += [(t, s, avg["w"].clone()) for s, avg in zip(widths, ema.averages)]
    return ema, snaps


def test_power_ema_is_the_closed_form_average():
    # the product of beta_s telescopes: step t weighs (t/T)^(g+1) - ((t-1)/T)^(g+1) after T steps
    values = torch.randn(200, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ema, _ = run_sequence(values, (0.05, 0.15), every=200)
    T = len(values)
    for gamma, avg in zip(ema.gammas, ema.averages):
        t = torch.arange(1, T + 1, dtype=torch.float64)
        weights = (t / T) ** (gamma + 1) - ((t - 1) / T) ** (gamma + 1)
        assert torch.allclose(avg["w"], (weights[:, None] * values).sum(0), atol=1e-12)


def test_an_untracked_width_is_rebuilt_from_the_snapshots():
    # a drifting weight (a random walk), as in training; 0.07 and 0.14 are rebuilt from 0.05 / 0.10
    steps = torch.randn(2000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    values = steps.cumsum(0)
    _, snaps = run_sequence(values, (0.05, 0.10), every=100)
    spread = float(values.std(0).mean())
    for target in (0.07, 0.14):
        truth, _ = run_sequence(values, (target,), every=2000)
        exact = truth.averages[0]["w"]
        gammas = [sigma_rel_to_gamma(s) for _, s, _ in snaps]
        w = solve_coefficients([t for t, _, _ in snaps], gammas, 2000, sigma_rel_to_gamma(target))
        mix = sum(float(c) * v for c, (_, _, v) in zip(w, snaps))
        assert float((mix - exact).abs().max()) < 0.05 * spread
        assert profile_error([t for t, _, _ in snaps], gammas, 2000, sigma_rel_to_gamma(target), w) < 0.1
        # a naive pick (the nearer tracked width) is further off than the rebuilt one
        nearer = snaps[-2][2] if target < 0.1 else snaps[-1][2]
        assert float((mix - exact).abs().max()) < float((nearer - exact).abs().max())


def test_training_saves_snapshots_resumes_exactly_and_rebuilds_a_model(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(TrainConfig(out=str(a), steps=10, every=5, posthoc_ema=True, **TINY))
    train(TrainConfig(out=str(a), steps=20, every=5, posthoc_ema=True, **TINY), resume=True)
    train(TrainConfig(out=str(b), steps=20, every=5, posthoc_ema=True, **TINY))
    names = sorted(p.name for p in (a / "phema").iterdir())
    assert names == sorted(f"phema-{s:.3f}-{t:09d}.safetensors" for s in (0.05, 0.1) for t in (5, 10, 15, 20))
    for name in names:  # resume continues the same averages
        assert (a / "phema" / name).read_bytes() == (b / "phema" / name).read_bytes()

    # a tracked width comes back as itself; another one differs from both and loads as a model
    weights, record = rebuild(a, 0.10)
    saved = load_file(str(a / "phema" / "phema-0.100-000000020.safetensors"))
    assert all(torch.allclose(weights[k], saved[k], atol=1e-6) for k in saved)
    assert record["snapshots"] == 8 and record["profile_error"] < 1e-6
    assert main(["ema", str(a), "--sigma-rel", "0.07", "--out", str(tmp_path / "m")]) == 0
    model = load_model(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["ema"]["sigma_rel"] == 0.07 and cfg["ema"]["step"] == 20
    net = model.denoiser.net.state_dict()
    assert any(not torch.equal(net[k], saved[k]) for k in saved if saved[k].is_floating_point())
    x = model.denoiser(torch.randn(2, 1, 8, 8), torch.tensor([0.5, 2.0]), model.class_embeddings[:2])
    assert torch.isfinite(x).all()
    # an earlier step: only the snapshots up to it are used
    assert rebuild(a, 0.07, step=10)[1]["snapshots"] == 4


def test_bad_uses_are_refused_cleanly(tmp_path, capsys):
    plain = tmp_path / "plain"
    train(TrainConfig(out=str(plain), steps=2, every=0, **TINY))
    with pytest.raises(UsageError, match="no post-hoc EMA snapshots.*--posthoc-ema"):
        posthoc_ema(plain, 0.1, tmp_path / "x")
    with pytest.raises(UsageError, match="trained without --posthoc-ema"):
        Trainer(TrainConfig(out=str(plain), steps=4, every=0, posthoc_ema=True, **TINY), resume=True)
    run = tmp_path / "run"
    train(TrainConfig(out=str(run), steps=4, every=2, posthoc_ema=True, **TINY))
    with pytest.raises(UsageError, match="trained with --posthoc-ema"):
        Trainer(TrainConfig(out=str(run), steps=6, every=2, **TINY), resume=True)
    assert main(["ema", str(run), "--sigma-rel", "0.1", "--out", str(plain)]) == 2  # holds a model
    assert "overwrite" in capsys.readouterr().err
    assert main(["ema", str(run), "--sigma-rel", "0.1", "--step", "1", "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "y").exists()
    assert main(["ema", str(run), "--sigma-rel", "0.25", "--out", str(tmp_path / "z")]) == 0
    assert "express this width poorly" in capsys.readouterr().err  # said, not silent
