"""Every sampler on Gaussian data, whose exact denoiser is known, reproduces the data variance."""

import pytest
import torch

from diffusio.generative.core.early_stop import Converged, CountingDenoiser, EarlyStopping
from diffusio.generative.core.guidance import AutoGuidance, CFGDenoiser
from diffusio.generative.core.samplers import SAMPLERS, ancestral_step
from diffusio.generative.core.schedules import get_sigmas_karras

S2 = 0.25  # data variance


def exact_denoiser(x, sigma, cond=None):
    """E[x0 | x] for x0 ~ N(mean, S2): mean + (x - mean) * S2 / (S2 + sigma^2); mean = cond if given."""
    sigma = torch.as_tensor(sigma).reshape(-1, 1, 1, 1)
    mean = 0.0 if cond is None else cond.reshape(-1, 1, 1, 1)
    return mean + (x - mean) * S2 / (S2 + sigma ** 2)


# consistency sampling needs a consistency function, not a denoiser: tested in test_distill_export
ODE_SAMPLERS = [name for name in SAMPLERS if name != "consistency"]


@pytest.mark.parametrize("name", ODE_SAMPLERS)
def test_sampler_reproduces_gaussian_variance(name):
    gen = torch.Generator().manual_seed(0)
    # First-order samplers have an O(1/steps) bias in the variance (DDPM: -7% at 200 steps);
    # at 1000 steps every sampler must be within 3%, so a wrong coefficient cannot hide.
    sigmas = get_sigmas_karras(1000, 0.002, 80.0)
    x = torch.randn(20000, 1, 1, 1, generator=gen) * sigmas[0]
    options = {"rtol": 1e-3, "atol": 1e-5} if name == "adaptive" else {}
    out = SAMPLERS[name][0](exact_denoiser, x, sigmas, generator=gen, **options)
    assert float(out.var()) == pytest.approx(S2, rel=0.03)
    assert abs(float(out.mean())) < 0.02


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_callback_sees_every_step(name):
    sigmas = get_sigmas_karras(5, 0.01, 10.0)
    seen = []
    SAMPLERS[name][0](exact_denoiser, torch.randn(4, 1, 2, 2) * 10, sigmas, callback=seen.append,
                      generator=torch.Generator().manual_seed(0))
    steps = len(seen) if name == "adaptive" else 5  # adaptive picks its own steps
    assert [s["i"] for s in seen] == list(range(steps))
    assert all(float(a["sigma_next"]) < float(a["sigma"]) for a in seen)


def test_adaptive_tolerance_trades_nfe_for_accuracy():
    sigmas = get_sigmas_karras(2, 0.002, 80.0)
    x = torch.randn(20000, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 80
    results = {}
    for rtol in (0.05, 0.001):
        counter = CountingDenoiser(type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0,
                                                 "__call__": staticmethod(exact_denoiser)})())
        out = SAMPLERS["adaptive"][0](counter, x, sigmas, rtol=rtol, atol=1e-5)
        results[rtol] = (abs(float(out.var()) / float(x.var() / 6400) - S2), counter.nfe)
    assert results[0.001][1] > results[0.05][1]  # tighter tolerance, more evaluations
    assert results[0.001][0] < results[0.05][0]  # ... and a smaller error


def test_early_stopping_ends_with_the_converged_estimate():
    sigmas = get_sigmas_karras(50, 0.002, 80.0)
    x = torch.randn(256, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 80
    inner = type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0, "__call__": staticmethod(exact_denoiser)})()
    full = SAMPLERS["dpmpp-2m"][0](inner, x, sigmas)
    counter = CountingDenoiser(inner)
    try:
        SAMPLERS["dpmpp-2m"][0](EarlyStopping(counter, tol=1e-3), x, sigmas)
        pytest.fail("should have converged before the last step")
    except Converged as stop:
        early = stop.denoised
    assert counter.nfe < 50
    assert (early - full).abs().max() < 0.01


def test_deterministic_samplers_are_deterministic_and_stochastic_ones_follow_the_generator():
    sigmas = get_sigmas_karras(8, 0.01, 10.0)
    x = torch.randn(16, 1, 2, 2, generator=torch.Generator().manual_seed(1)) * 10
    run = lambda seed: SAMPLERS["ddpm"][0](exact_denoiser, x, sigmas, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_ancestral_step_preserves_total_variance():
    down, up = ancestral_step(2.0, 1.0, eta=1.0)
    assert down ** 2 + up ** 2 == pytest.approx(1.0)
    assert ancestral_step(2.0, 1.0, eta=0.0) == (1.0, 0.0)


def test_cfg_wrapper_formula_and_gaussian_mean():
    cond = torch.full((4000,), 1.0)
    guided = CFGDenoiser(type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0,
                                        "__call__": staticmethod(exact_denoiser)})(), 1.0)
    sigmas = get_sigmas_karras(30, 0.002, 80.0)
    x = torch.randn(4000, 1, 1, 1, generator=torch.Generator().manual_seed(0)) * 80
    out = SAMPLERS["heun"][0](guided, x, sigmas, cond=cond)
    assert float(out.mean()) == pytest.approx(1.0, abs=0.03)  # conditional mean reached
    # w * (D_c - D_u) + D_u, checked at one point
    w = 3.0
    g = CFGDenoiser(guided.inner, w)
    x1, s = torch.ones(2, 1, 1, 1), torch.tensor(1.0)
    c = torch.tensor([2.0, 2.0])
    want = exact_denoiser(x1, s) + w * (exact_denoiser(x1, s, c) - exact_denoiser(x1, s))
    assert torch.allclose(g(x1, s, c), want)
    with pytest.raises(ValueError, match="guidance"):
        CFGDenoiser(guided.inner, -1.0)


def test_autoguidance_formula_and_composition_with_cfg():
    """D_bad + w (D - D_bad), here with the exact denoisers of N(mean, 0.25) (the model) and of
    N(mean, 1) (a blurrier guide); CFG then guides the autoguided model."""
    def denoiser(var):
        def d(x, sigma, cond=None):
            sigma = torch.as_tensor(sigma).reshape(-1, 1, 1, 1)
            mean = 0.0 if cond is None else cond.reshape(-1, 1, 1, 1)
            return mean + (x - mean) * var / (var + sigma ** 2)
        return type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0, "__call__": staticmethod(d)})()

    good, bad = denoiser(S2), denoiser(1.0)
    x, s, c = torch.full((2, 1, 1, 1), 3.0), torch.tensor(1.0), torch.tensor([1.0, -1.0])
    w = 2.5
    ag = AutoGuidance(good, bad, w)
    assert torch.allclose(ag(x, s, c), bad(x, s, c) + w * (good(x, s, c) - bad(x, s, c)))
    assert torch.allclose(AutoGuidance(good, bad, 1.0)(x, s, c), good(x, s, c))   # scale 1: the model itself
    both = CFGDenoiser(ag, 2.0)
    uncond = ag(x, s, torch.zeros_like(c))
    assert torch.allclose(both(x, s, c), uncond + 2.0 * (ag(x, s, c) - uncond))
    with pytest.raises(ValueError, match="autoguidance"):
        AutoGuidance(good, bad, -1.0)


def test_attribute_guidance_separates_prompt_and_attributes():
    # a toy denoiser whose output records its condition: text dims add 1x, attribute dims 10x
    inner = type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0,
                           "__call__": staticmethod(lambda x, s, c: x + c[:, :2].sum(1).reshape(-1, 1, 1, 1)
                                                    + 10 * c[:, 2:].sum(1).reshape(-1, 1, 1, 1))})()
    x, s = torch.zeros(3, 1, 1, 1), torch.tensor(1.0)
    cond = torch.tensor([[1.0, 0.0, 0.5, 1.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 1.0]])
    text = cond.clone()
    text[:, 2:] = 0
    w, wa = 3.0, 8.0
    d = lambda c: inner(x, s, c)  # noqa: E731
    want = d(torch.zeros_like(cond)) + w * (d(text) - d(torch.zeros_like(cond))) + wa * (d(cond) - d(text))
    assert torch.allclose(CFGDenoiser(inner, w, wa, attr_dims=2)(x, s, cond), want)
    # attribute scale = prompt scale is plain guidance; no attribute block means no attribute guidance
    assert torch.allclose(CFGDenoiser(inner, w, w, attr_dims=2)(x, s, cond), CFGDenoiser(inner, w)(x, s, cond))
    assert torch.allclose(CFGDenoiser(inner, w, wa, attr_dims=0)(x, s, cond), CFGDenoiser(inner, w)(x, s, cond))
    plain = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(CFGDenoiser(inner, w, wa, attr_dims=2)(x[:1], s, plain), CFGDenoiser(inner, w)(x[:1], s, plain))
    with pytest.raises(ValueError, match="guidance"):
        CFGDenoiser(inner, w, -1.0, attr_dims=2)


def test_guidance_interval_guides_only_inside_and_costs_one_pass_outside():
    """Kynkaanniemi et al. 2024: lo < sigma <= hi guided, plain conditional elsewhere, per row."""
    calls = []

    def inner(x, s, c):
        calls.append(len(x))
        return x + c[:, :1].reshape(-1, 1, 1, 1) * torch.as_tensor(s).reshape(-1, 1, 1, 1)

    inner = type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0, "__call__": staticmethod(inner)})()
    g = CFGDenoiser(inner, 4.0, interval=(0.5, 2.0))
    x, c = torch.zeros(3, 1, 1, 1), torch.ones(3, 2)
    guided = CFGDenoiser(inner, 4.0)
    for s in (0.5, 3.0):  # the lower end is outside, as is anything above hi
        calls.clear()
        assert torch.equal(g(x, torch.tensor(s), c), inner(x, torch.tensor(s), c))
        assert calls == [3, 3]  # one pass (plus the reference call)
    calls.clear()
    assert torch.allclose(g(x, torch.tensor(1.0), c), guided(x, torch.tensor(1.0), c))
    sigmas = torch.tensor([1.0, 3.0, 2.0])  # rows at different levels: only rows 0 and 2 are guided
    mixed = g(x, sigmas, c)
    assert torch.allclose(mixed[[0, 2]], guided(x[[0, 2]], sigmas[[0, 2]], c[[0, 2]]))
    assert torch.allclose(mixed[1], inner(x[1:2], sigmas[1:2], c[1:2])[0])
    for bad in ((2.0, 1.0), (-1.0, 1.0), ("a", 1.0), (0.1,)):
        with pytest.raises(ValueError, match="interval"):
            CFGDenoiser(inner, 4.0, interval=bad)


def test_attribute_wishes_stay_guided_outside_the_guidance_interval():
    inner = type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0,
                           "__call__": staticmethod(lambda x, s, c: x + c[:, :2].sum(1).reshape(-1, 1, 1, 1)
                                                    + 10 * c[:, 2:].sum(1).reshape(-1, 1, 1, 1))})()
    x, s = torch.zeros(2, 1, 1, 1), torch.tensor(10.0)  # above the interval
    cond = torch.tensor([[1.0, 0.0, 0.5, 1.0], [1.0, 0.0, 0.0, 0.0]])  # a wish; none
    text = cond.clone()
    text[:, 2:] = 0
    g = CFGDenoiser(inner, 3.0, 8.0, attr_dims=2, interval=(0.3, 5.0))
    out = g(x, s, cond)
    assert torch.allclose(out[0], (inner(x, s, text) + 8.0 * (inner(x, s, cond) - inner(x, s, text)))[0])
    assert torch.allclose(out[1], inner(x, s, cond)[1])  # no wish: the plain conditional, as before
    assert torch.allclose(CFGDenoiser(inner, 3.0, 1.0, attr_dims=2, interval=(0.3, 5.0))(x, s, cond),
                          inner(x, s, cond))  # attribute scale 1: nothing guided outside


def test_the_prompt_is_held_under_wishes_at_every_noise_level():
    inner = type("D", (), {"sigma_min": 0.002, "sigma_max": 80.0,
                           "__call__": staticmethod(lambda x, s, c: x + c[:, :2].sum(1).reshape(-1, 1, 1, 1)
                                                    + 10 * c[:, 2:].sum(1).reshape(-1, 1, 1, 1))})()
    x = torch.zeros(2, 1, 1, 1)
    cond = torch.tensor([[1.0, 0.5, 0.5, 1.0], [1.0, 0.5, 0.0, 0.0]])  # a wish; none
    text, null = cond.clone(), torch.zeros_like(cond)
    text[:, 2:] = 0
    g = CFGDenoiser(inner, 2.0, 2.5, attr_dims=2, interval=(0.3, 5.0), wish_scale=3.5)
    for s, w in ((torch.tensor(10.0), 1.0), (torch.tensor(1.0), 2.0)):  # above the interval; inside it
        d = lambda c: inner(x, s, c)  # noqa: E731
        out = g(x, s, cond)
        held = d(null) + 3.5 * (d(text) - d(null)) + 2.5 * (d(cond) - d(text))
        assert torch.allclose(out[0], held[0])  # the wish's row: prompt at 3.5 at either level
        assert torch.allclose(out[1], (d(null) + w * (d(text) - d(null)))[1])  # the other: as without wishes
    plain = CFGDenoiser(inner, 2.0, 2.5, attr_dims=2, interval=(0.3, 5.0))
    for s in (torch.tensor(10.0), torch.tensor(1.0)):  # no wish in the batch: exactly as before
        assert torch.equal(g(x[1:], s, cond[1:]), plain(x[1:], s, cond[1:]))
    with pytest.raises(ValueError, match="attr_prompt_guidance"):
        CFGDenoiser(inner, 2.0, 2.5, attr_dims=2, wish_scale=-1.0)
