"""Editing functions on a model whose exact denoiser is known (Gaussian data), plus the CLI."""

import math

import numpy as np
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.generative.editing.edits import (denoise, estimate_noise_sigma, img2img, inpaint, invert, reconstruct,
                                         reconstruction_guided, slerp, uncensor)

S2 = 0.25


class GaussianDenoiser:
    """E[x0 | x] for x0 ~ N(0, S2 I): the exact denoiser."""

    sigma_min, sigma_max = 0.002, 80.0

    def __call__(self, x, sigma, cond=None):
        sigma = torch.as_tensor(sigma).reshape(-1, 1, 1, 1)
        return x * S2 / (S2 + sigma ** 2)


class FakeGen:
    denoiser = GaussianDenoiser()
    defaults = {"guidance": 1.0}


def images(n=4, seed=0):
    return (torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)) * 0.5).clamp(-1, 1)


def test_img2img_endpoints():
    x = images()
    assert torch.equal(img2img(FakeGen(), x, 0.0), x)
    with pytest.raises(UsageError, match="strength"):
        img2img(FakeGen(), x, 1.5)
    weak, strong = img2img(FakeGen(), x, 0.2, seed=1), img2img(FakeGen(), x, 1.0, seed=1)
    assert (weak - x).abs().mean() < (strong - x).abs().mean()


def test_inversion_follows_the_ode_and_round_trips():
    x = images() * 0.5
    z = invert(FakeGen(), x, steps=200)
    # probability-flow ODE of Gaussian data: x(sigma) = x0 * sqrt(S2 + sigma^2) / sqrt(S2)
    expected = x * math.sqrt(S2 + 80.0 ** 2) / math.sqrt(S2) / 80.0
    assert torch.allclose(z, expected, rtol=0.05, atol=1e-3)
    back = reconstruct(FakeGen(), z, steps=200)
    psnr = 10 * math.log10(4 / float(((back - x) ** 2).mean()))
    assert psnr > 30
    # with fixed-point iterations each Euler step is inverted exactly: far better than plain DDIM inversion
    def round_trip(iters):
        back = reconstruct(FakeGen(), invert(FakeGen(), x, steps=20, iters=iters), steps=20)
        return 10 * math.log10(4 / float(((back - x) ** 2).mean()))
    assert round_trip(3) > round_trip(0) + 20


def test_slerp():
    a, b = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-6)
    a, b = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    assert torch.allclose(slerp(a, b, 0.3).norm(dim=1), torch.ones(3), atol=1e-5)


def test_inpaint_keeps_known_pixels_and_reports_nfe():
    x = images()
    mask = np.zeros((8, 8), np.float32)
    mask[4:] = 1
    result = inpaint(FakeGen(), x, mask, steps=6, resample=3, seed=0)
    out, nfe = result.images, result.nfe
    assert nfe == 18
    assert torch.equal(out[..., :4, :], x[..., :4, :])
    assert not torch.equal(out[..., 4:, :], x[..., 4:, :])
    with pytest.raises(UsageError, match="mask"):
        inpaint(FakeGen(), x, mask * 0.5, steps=2)


class FlatDenoiser(GaussianDenoiser):
    """E[x0 | x] for flat images x0 = a * ones, a ~ N(0, S2): every pixel tells about every other."""

    def __call__(self, x, sigma, cond=None):
        sigma = torch.as_tensor(sigma).reshape(-1, 1, 1, 1)
        return (S2 * x.sum((1, 2, 3), keepdim=True) / (sigma ** 2 + x[0].numel() * S2)).expand_as(x)


def test_reconstruction_guidance_moves_the_fill_toward_what_the_kept_pixels_say():
    x0 = torch.tensor([-0.6, -0.2, 0.3, 0.7]).reshape(4, 1, 1, 1).expand(4, 1, 8, 8).clone()
    m = torch.zeros(1, 1, 8, 8)
    m[..., 4:, :] = 1
    x = x0 * (1 - m) + torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2.0
    plain = FlatDenoiser()(x, torch.tensor(2.0))
    guided = reconstruction_guided(FlatDenoiser(), x, torch.tensor(2.0), None, x0, m, 0.3)
    assert torch.equal(guided[..., :4, :], plain[..., :4, :])  # only the masked part moves ...
    error = lambda d: float((d[..., 4:, :] - x0[..., 4:, :]).abs().mean())  # noqa: E731
    assert error(guided) < 0.9 * error(plain)  # ... toward the flat value the kept half shows
    result = inpaint(FakeGen(), x0, m[0, 0].numpy(), steps=3, resample=1, seed=0, recon=0.3)
    out, nfe = result.images, result.nfe
    assert nfe == 3 and torch.equal(out[..., :4, :], x0[..., :4, :])
    with pytest.raises(UsageError, match="recon"):
        inpaint(FakeGen(), x0, m[0, 0].numpy(), steps=3, recon=-1.0)


def test_noise_estimate_and_denoise():
    clean = torch.zeros(8, 1, 32, 32) + torch.linspace(-0.5, 0.5, 32)  # smooth images
    noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 0.2
    assert estimate_noise_sigma(noisy) == pytest.approx(0.2, rel=0.1)
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(2)) * math.sqrt(S2)
    y = x + torch.randn(x.shape, generator=torch.Generator().manual_seed(1)) * 0.4
    noisy_mse = float(((y - x) ** 2).mean())
    # the posterior mean's MSE is S2 sigma^2 / (S2 + sigma^2): 0.61 of the noisy MSE here
    mmse = float(((denoise(FakeGen(), y, 0.4) - x) ** 2).mean())
    assert mmse == pytest.approx(noisy_mse * S2 / (S2 + 0.16), rel=0.1)
    ode = float(((denoise(FakeGen(), y, 0.4, method="ode") - x) ** 2).mean())
    assert mmse < ode < noisy_mse


def test_uncensor_puts_clipped_pixels_at_the_mean_of_the_cut_noise():
    sigma = 0.3
    noise = torch.randn(200_000, generator=torch.Generator().manual_seed(0)) * sigma
    for end in (-1.0, 1.0):
        clipped = (end + noise).clamp(-1, 1)
        assert float(clipped.mean()) == pytest.approx(end - end * sigma * math.sqrt(2 / math.pi) / 2, abs=2e-3)
        assert float(uncensor(clipped, sigma).mean()) == pytest.approx(end, abs=2e-3)  # unbiased again
    inside = torch.tensor([-1.5, -0.999, 0.0, 0.999, 1.5])  # inside the range, or noise that was not clipped
    assert torch.equal(uncensor(inside, sigma), inside)


def test_noise_estimate_sees_the_noise_that_clipping_hid():
    clean = torch.full((8, 1, 32, 32), -1.0)
    clean[..., 8:24, 8:24] = torch.linspace(-0.6, 0.6, 16)  # an object on a black canvas
    for sigma in (0.1, 0.2, 0.4):
        noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(3)) * sigma
        clipped = (clean + noise).clamp(-1, 1)
        assert estimate_noise_sigma(clean + noise) == pytest.approx(sigma, rel=0.05)
        assert estimate_noise_sigma(clipped) == pytest.approx(sigma, rel=0.05)  # plain Immerkaer: 29-31 % low here
        assert estimate_noise_sigma(clipped) == estimate_noise_sigma(clipped)  # seeded
    assert estimate_noise_sigma(torch.full((2, 1, 8, 8), -1.0)) == 0.0  # a black frame has no noise to find


def test_noise_estimate_leaves_edges_out_and_noise_in():
    noise = torch.randn(64, 1, 32, 32, generator=torch.Generator().manual_seed(4)) * 0.05
    assert estimate_noise_sigma(noise) == pytest.approx(0.05, rel=0.02)  # the steepest windows' noise is noise too
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    disk = ((rows - 15.5) ** 2 + (cols - 15.5) ** 2 < 100).float() * 0.8  # a round edge reads as noise
    laplace = torch.tensor([[1.0, -2, 1], [-2, 4, -2], [1, -2, 1]])[None, None]
    everywhere = math.sqrt(math.pi / 2) * float(torch.nn.functional.conv2d(disk + noise, laplace).abs().mean()) / 6
    assert everywhere > 0.07  # Immerkaer over every window: 1.5 times the noise
    assert estimate_noise_sigma(disk + noise) == pytest.approx(0.05, rel=0.03)


def test_editing_cli(tmp_path, capsys):
    from diffusio.cli.main import main

    src = tmp_path / "src.png"
    assert main(["generate", "a sneaker", "-n", "1", "--steps", "4", "-o", str(src)]) == 0
    assert main(["img2img", str(src), "an ankle boot", "--steps", "4", "-o", str(tmp_path / "b.png")]) == 0
    assert main(["invert", str(src), "--steps", "4", "-o", str(tmp_path / "z.npy")]) == 0
    assert main(["generate", "--latent", str(tmp_path / "z.npy"), "--steps", "4", "-o", str(tmp_path / "r.png")]) == 0
    capsys.readouterr()
    assert main(["inpaint", str(src), "--box", "0,14,28,28", "--steps", "3", "--resample", "1",
                 "-o", str(tmp_path / "i.png")]) == 0
    out = capsys.readouterr().out
    assert "named by the context classifier for fashion-mnist" in out and "(3 network evaluations" in out
    assert main(["inpaint", str(src), "--box", "0,14,28,28", "--steps", "3", "--resample", "1",
                 "--class-from", "model", "-o", str(tmp_path / "i.png")]) == 0
    out = capsys.readouterr().out
    assert "named by the model" in out and "(83 network evaluations" in out
    assert main(["inpaint", str(src), "--box", "0,14,28,28", "--class-from", "nowhere",
                 "-o", str(tmp_path / "x.png")]) == 2
    assert main(["inpaint", str(src), "--box", "0,14,28,28", "--steps", "2", "--recon", "30",
                 "--no-auto-class", "-o", str(tmp_path / "r.png")]) == 0
    assert "(2 network evaluations" in capsys.readouterr().out  # --recon: one pass per step by default
    with pytest.raises(SystemExit) as bad:
        main(["inpaint", str(src), "--box", "0,14,28,28", "--recon", "-1", "-o", str(tmp_path / "x.png")])
    assert bad.value.code == 2
    assert main(["denoise", str(src), "--sigma", "0.1", "--steps", "3", "-o", str(tmp_path / "d.png")]) == 0
    assert main(["interpolate", str(src), str(tmp_path / "b.png"), "--frames", "3", "--steps", "3",
                 "-o", str(tmp_path / "s.png"), "--gif", str(tmp_path / "s.gif")]) == 0
    assert main(["inpaint", str(src), "-o", str(tmp_path / "x.png")]) == 2
    assert main(["inpaint", str(src), "--box", "0,0,99,5", "-o", str(tmp_path / "x.png")]) == 2
    assert "outside" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_inferred_class_from_half_an_image_and_auto_class_inpainting(shipped):
    from diffusio.generative.data.datasets import load_dataset
    from diffusio.generative.editing.edits import infer_class

    test = load_dataset("fashion-mnist", "test")
    x, y = test.images[:30], test.labels[:30]
    mask = np.zeros((28, 28), np.float32)
    mask[14:] = 1
    assert (infer_class(shipped, x, mask) == y).mean() >= 0.6  # chance: 0.1
    result = inpaint(shipped, x[:2], mask, steps=3, resample=1, seed=0, auto_class=True, classifier="model")
    out, nfe = result.images, result.nfe
    assert nfe == 3 + 80 and torch.equal(out[:, :, :14], torch.from_numpy(x[:2, :, :14]))


def test_context_classifier_names_the_class_from_the_visible_half(shipped):
    from diffusio.generative.evaluation.classifier import context_classifier, load_classifier
    from diffusio.generative.data.datasets import load_dataset
    from diffusio.generative.editing.edits import class_source, infer_class

    namer = class_source(shipped)  # auto: the shipped one for the model's data
    assert namer is not None and namer.context and namer.dataset == "fashion-mnist"
    assert class_source(shipped, "model") is None
    test = load_dataset("fashion-mnist", "test")
    x, y = test.images[-400:], test.labels[-400:]
    mask = np.zeros((28, 28), np.float32)
    mask[14:] = 1
    labels = infer_class(shipped, x, mask, classifier=namer)
    assert (labels == y).mean() >= 0.8  # 86% on all 10,000 test images (docs/benchmarks.md)
    judge = load_classifier("fashion-mnist")  # trained on whole images, it is lost on halves
    assert (judge.predict_visible(x, mask) == y).mean() < 0.6
    scrambled = x.copy()
    scrambled[..., 14:, :] = np.random.default_rng(0).uniform(-1, 1, scrambled[..., 14:, :].shape)
    assert np.array_equal(infer_class(shipped, scrambled, mask, classifier=namer), labels)  # hidden part unseen
    result = inpaint(shipped, x[:2], mask, steps=3, resample=1, seed=0, auto_class=True)  # default: the namer
    assert result.nfe == 3 and torch.equal(result.images[:, :, :14], torch.from_numpy(x[:2, :, :14]))
    assert result.named_by == "fashion-mnist" and np.array_equal(result.classes, labels[:2])
    other = context_classifier("fashion-mnist")
    other.class_names = list(reversed(other.class_names))
    with pytest.raises(UsageError, match="not the model's"):
        infer_class(shipped, x[:1], mask, classifier=other)
    with pytest.raises(UsageError, match="--class-from takes auto, model"):
        class_source(shipped, "no-such-folder")


def test_hide_random_parts_mix_and_sizes():
    from diffusio.generative.evaluation.classifier import hide, hide_random_parts

    masks = hide_random_parts(2000, 28, 28, torch.Generator().manual_seed(0))
    assert masks.shape == (2000, 1, 28, 28) and set(masks.unique().tolist()) <= {0.0, 1.0}
    hidden = masks.mean((1, 2, 3))
    assert 0.12 < float((hidden == 0).float().mean()) < 0.18  # NOTHING_HIDDEN of them
    assert 0.05 < float(hidden[hidden > 0].min()) and float(hidden.max()) < 0.75
    assert torch.equal(masks, hide_random_parts(2000, 28, 28, torch.Generator().manual_seed(0)))
    x = torch.rand(2000, 1, 28, 28)
    assert torch.equal(hide(x, masks)[masks > 0], torch.full_like(x, -1.0)[masks > 0])
    assert torch.equal(hide(x, masks)[masks == 0], x[masks == 0])
