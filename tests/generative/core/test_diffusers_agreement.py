"""Our samplers, driven through the VP (DDPM eps-prediction) path, agree with diffusers' schedulers.

Same network, same start noise, same per-step noise, same steps: final images agree to 1e-4.
Sigmas are taken from each scheduler's own timesteps, so these tests check the sampler maths;
``test_timestep_spacings_match`` checks that our schedules reproduce those timesteps.
"""

import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from diffusio.generative.core.denoiser import VPDenoiser  # noqa: E402
from diffusio.generative.core.samplers import get_sampler  # noqa: E402
from diffusio.generative.core.schedules import append_zero, get_sigmas_vp, vp_timesteps  # noqa: E402

TOL = 1e-4


class TinyEps(nn.Module):
    """The exact eps-predictor for N(0, 0.25) data plus a small random conv net.

    The exact part keeps every trajectory O(1) (a purely random net drives x0 estimates to
    hundreds, where float32 rounding alone exceeds 1e-4); the random part, smooth in t,
    makes the test sensitive to every coefficient.
    """

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("abar", torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0))
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 1, 3, padding=1)
        self.lin = nn.Linear(16, 8)
        self.register_buffer("freqs", torch.exp(-math.log(1000.0) * torch.arange(8) / 8))

    def forward(self, x, t, cond=None):
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1).expand(x.shape[0])
        emb = self.lin(torch.cat([(t[:, None] * self.freqs).sin(), (t[:, None] * self.freqs).cos()], 1))
        lo = t.double().floor().long().clamp(0, 999)
        w = t.double() - lo
        abar = ((1 - w) * self.abar[lo] + w * self.abar[(lo + 1).clamp(max=999)]).float()[:, None, None, None]
        exact = x * (1 - abar).sqrt() / (0.25 * abar + 1 - abar)
        return exact + 0.1 * self.conv2(torch.tanh(self.conv1(x) + emb[:, :, None, None]))


@pytest.fixture(scope="module")
def net():
    return TinyEps().eval()


def noise(seed=0):
    return torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def sigmas_at(timesteps, abar):
    t = torch.as_tensor(np.asarray(timesteps), dtype=torch.long)
    return append_zero(((1 - abar[t]) / abar[t]).sqrt().float())


@torch.no_grad()
def run_diffusers(sched, net, x, steps, seed=1, **step_kwargs):
    sched.set_timesteps(steps)
    x = x * sched.init_noise_sigma
    gen = torch.Generator().manual_seed(seed)
    if "generator" in inspect.signature(sched.step).parameters:
        step_kwargs["generator"] = gen
    for t in sched.timesteps:
        eps = net(sched.scale_model_input(x, t), t)
        x = sched.step(eps, t, x, **step_kwargs).prev_sample
    return x


def ours(name, net, x_sigma, sigmas, seed=1, **kw):
    return get_sampler(name)(VPDenoiser(net), x_sigma, sigmas, generator=torch.Generator().manual_seed(seed), **kw)


COMMON = dict(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear")


@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("spacing", ["leading", "trailing"])
def test_ddim(net, eta, spacing):
    sched = diffusers.DDIMScheduler(**COMMON, clip_sample=False, set_alpha_to_one=True, timestep_spacing=spacing)
    steps, x = 10, noise()
    ref = run_diffusers(sched, net, x, steps, eta=eta)
    abar = VPDenoiser(net).alphas_cumprod
    sigmas = get_sigmas_vp(steps, abar, spacing)
    got = ours("ddim", net, x * (1 + sigmas[0] ** 2).sqrt(), sigmas, eta=eta)
    assert (got - ref).abs().max() <= TOL


def test_ddim_linspace_against_the_paper(net):
    """diffusers' DDIM steps to t - T//n whatever the spacing, which is wrong for "linspace"
    (999 -> 899 instead of 999 -> 888); so test against Song et al. (2021) eq. 12 directly."""
    steps, x = 7, noise()
    abar = VPDenoiser(net).alphas_cumprod
    ts = vp_timesteps(steps, 1000, "linspace").tolist()
    xt = x.double()
    with torch.no_grad():
        for i, t in enumerate(ts):
            a_t, a_prev = abar[t], (abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, dtype=torch.float64))
            eps = net(xt.float(), t).double()
            x0 = (xt - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            xt = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    sigmas = get_sigmas_vp(steps, abar, "linspace")
    got = ours("ddim", net, x * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert (got - xt.float()).abs().max() <= TOL


def test_ddpm(net):
    sched = diffusers.DDPMScheduler(**COMMON, clip_sample=False, variance_type="fixed_small")
    steps, x = 20, noise()
    ref = run_diffusers(sched, net, x, steps)
    abar = VPDenoiser(net).alphas_cumprod
    sigmas = sigmas_at(sched.timesteps, abar)
    got = ours("ddpm", net, x * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert (got - ref).abs().max() <= TOL


@pytest.mark.parametrize("cls,name", [("EulerDiscreteScheduler", "euler"), ("HeunDiscreteScheduler", "heun")])
@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_euler_and_heun(net, cls, name, spacing):
    sched = getattr(diffusers, cls)(**COMMON, timestep_spacing=spacing)
    steps, x = 10, noise()
    ref = run_diffusers(sched, net, x, steps)
    sched.set_timesteps(steps)
    sigmas = sched.sigmas.float() if name == "euler" else torch.cat([sched.sigmas[:1], sched.sigmas[1::2]]).float()
    # diffusers starts "leading" from sqrt(sigma_max^2 + 1) * noise, the others from sigma_max * noise
    got = ours(name, net, x * sched.init_noise_sigma, sigmas)
    assert (got - ref).abs().max() <= TOL


@pytest.mark.parametrize("steps", [5, 10, 20])
def test_dpmpp_2m(net, steps):
    sched = diffusers.DPMSolverMultistepScheduler(**COMMON, algorithm_type="dpmsolver++", solver_order=2)
    x = noise()
    ref = run_diffusers(sched, net, x, steps)
    sigmas = sigmas_at(sched.timesteps, VPDenoiser(net).alphas_cumprod)
    got = ours("dpmpp-2m", net, x * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert (got - ref).abs().max() <= TOL


@pytest.mark.parametrize("steps", [5, 10, 20])
def test_unipc(net, steps):
    sched = diffusers.UniPCMultistepScheduler(**COMMON, solver_order=2, solver_type="bh2", predict_x0=True)
    x = noise()
    ref = run_diffusers(sched, net, x, steps)
    sigmas = sigmas_at(sched.timesteps, VPDenoiser(net).alphas_cumprod)
    got = ours("unipc", net, x * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    assert (got - ref).abs().max() <= TOL


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
def test_timestep_spacings_match(spacing):
    sched = diffusers.DDIMScheduler(**COMMON, timestep_spacing=spacing)
    for steps in (5, 10, 50):
        sched.set_timesteps(steps)
        assert vp_timesteps(steps, 1000, spacing).tolist() == sched.timesteps.tolist()
