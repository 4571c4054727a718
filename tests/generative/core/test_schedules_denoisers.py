"""Schedules and preconditioning against their closed forms."""

import math

import pytest
import torch

from diffusio.generative.core.denoiser import EDMDenoiser, VPDenoiser, vp_alphas_cumprod
from diffusio.generative.core.schedules import (get_sigmas, get_sigmas_exponential, get_sigmas_karras,
                                           get_sigmas_vp, vp_timesteps)


def test_karras_closed_form():
    n, lo, hi, rho = 10, 0.002, 80.0, 7.0
    s = get_sigmas_karras(n, lo, hi, rho)
    assert len(s) == n + 1 and s[-1] == 0
    for i in range(n):
        want = (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
        assert float(s[i]) == pytest.approx(want, rel=1e-5)


def test_exponential_is_uniform_in_log_sigma():
    s = get_sigmas_exponential(6, 0.01, 10.0)[:-1].double().log()
    assert torch.allclose(s.diff(), s.diff()[0].expand(5), atol=1e-5)


def test_vp_sigmas_match_alphas():
    abar = vp_alphas_cumprod(1000)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    assert torch.allclose(abar, torch.cumprod(1 - betas, 0))
    s = get_sigmas_vp(10, abar, "trailing")
    ts = vp_timesteps(10, 1000, "trailing")
    assert torch.allclose(s[:-1].double(), ((1 - abar[ts]) / abar[ts]).sqrt(), rtol=1e-6)


@pytest.mark.parametrize("spacing,expected", [
    ("trailing", [999, 799, 599, 399, 199]),
    ("leading", [800, 600, 400, 200, 0]),
    ("linspace", [999, 749, 500, 250, 0]),
])
def test_vp_timestep_spacings(spacing, expected):
    assert vp_timesteps(5, 1000, spacing).tolist() == expected


def test_edm_preconditioning_formulas():
    calls = {}

    def net(x_in, c_noise, cond):
        calls["x_in"], calls["c_noise"] = x_in, c_noise
        return torch.ones_like(x_in)

    D = EDMDenoiser(net, sigma_data=0.5)
    x, sigma = torch.full((1, 1, 2, 2), 3.0), torch.tensor([2.0])
    out = D(x, sigma)
    sd = 0.5
    c_skip = sd ** 2 / (4 + sd ** 2)
    c_out = 2 * sd / math.sqrt(4 + sd ** 2)
    c_in = 1 / math.sqrt(4 + sd ** 2)
    assert torch.allclose(calls["x_in"], x * c_in)
    assert float(calls["c_noise"]) == pytest.approx(math.log(2.0) / 4)
    assert torch.allclose(out, c_skip * x + c_out)
    # lambda(sigma) * c_out(sigma)^2 == 1: the effective target has unit weight (EDM eq. 8)
    assert float(D.loss_weight(sigma) * D.c_out(sigma) ** 2) == pytest.approx(1.0)


def test_vp_denoiser_is_eps_prediction():
    seen = {}

    def net(x_in, t, cond):
        seen["t"], seen["x_in"] = t, x_in
        return torch.full_like(x_in, 0.5)

    D = VPDenoiser(net)
    t = 250
    sigma = D.train_sigmas[t].float().reshape(1)
    x = torch.randn(1, 1, 3, 3)
    out = D(x, sigma)
    assert float(seen["t"]) == pytest.approx(t, abs=1e-3)  # exact on the training grid
    abar = D.alphas_cumprod[t]
    assert torch.allclose(seen["x_in"], x * abar.sqrt().float(), atol=1e-6)  # x_t = sqrt(abar) x_sigma
    assert torch.allclose(out, x - sigma * 0.5)
    assert float(D.t_to_sigma(torch.tensor([t]))) == pytest.approx(float(sigma), rel=1e-5)


def test_vp_schedule_on_an_edm_model_uses_ddpm_linear_betas():
    D = EDMDenoiser(lambda x, c, cond: x)
    sigmas = get_sigmas("vp-trailing", 10, D)
    abar = vp_alphas_cumprod(1000)
    assert float(sigmas[0]) == pytest.approx(float(((1 - abar[999]) / abar[999]).sqrt()), rel=1e-5)
    assert len(sigmas) == 11 and float(sigmas[-1]) == 0
