"""diffusers models in: a UNet2DModel saved by diffusers loads as a diffusio model, gives diffusers'
own denoiser output and DDIM samples, and runs diffusio's samplers and edits; bad folders get
clear errors."""

import json
import shutil

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
              pytest.mark.slow]  # diffusers itself takes seconds to import and load

from diffusio.errors import UsageError  # noqa: E402
from diffusio.generative import Generator  # noqa: E402
from diffusio.generative.core.samplers import get_sampler  # noqa: E402
from diffusio.generative.core.schedules import get_sigmas_vp  # noqa: E402


def tiny_unet(classes=None):
    torch.manual_seed(0)
    return diffusers.UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8,
                                 num_class_embeds=classes)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("diffusers") / "pipe"
    unet = tiny_unet()
    with torch.no_grad():  # a random UNet outputs tiny values at init: scale them up so the test bites
        for p in unet.conv_out.parameters():
            p.normal_(0, 0.2)
    scheduler = diffusers.DDIMScheduler(beta_schedule="squaredcos_cap_v2", clip_sample=False)
    diffusers.DDIMPipeline(unet=unet, scheduler=scheduler).save_pretrained(path)
    return path


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-5), (torch.float32, 2e-5)])
def test_denoiser_equals_diffusers(folder, dtype, tol):
    """x0 from diffusers' own eps at training timesteps; in float64 the mapping is exact to 1e-5 (in
    float32 the two orders of the same arithmetic round differently: relative to the size of x0, which
    for a random network at high noise reaches 200)."""
    gen = Generator.load(folder)
    pipe = diffusers.DDIMPipeline.from_pretrained(folder)
    gen.denoiser.to(dtype)
    pipe.unet.to(dtype)
    abar = pipe.scheduler.alphas_cumprod.to(dtype)
    x_t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=dtype)
    for t in (10, 500, 990):
        with torch.no_grad():
            eps = pipe.unet(x_t, t).sample
            a = abar[t]
            sigma = ((1 - a) / a).sqrt()
            ours = gen.denoiser(x_t / a.sqrt(), sigma.expand(3))
        theirs = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        assert (ours - theirs).abs().max() < tol * max(1.0, float(theirs.abs().max())), t


def test_ddim_samples_equal_ddim_pipeline(folder):
    pipe = diffusers.DDIMPipeline.from_pretrained(folder)
    steps = 10
    theirs = pipe(batch_size=2, generator=torch.Generator().manual_seed(3), eta=0.0, num_inference_steps=steps,
                  output_type="np").images  # (x / 2 + 0.5) clamped to [0, 1], NHWC
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    gen = Generator.load(folder)
    sigmas = get_sigmas_vp(steps, gen.denoiser.alphas_cumprod, "leading")
    with torch.no_grad():
        ours = get_sampler("ddim")(gen.denoiser, noise * (1 + sigmas[0] ** 2).sqrt(), sigmas)
    ours = (ours / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - theirs).max() < 1e-4


def test_diffusio_samplers_and_edits_run_on_it(folder):
    gen = Generator.load(folder)
    assert gen.defaults["schedule"] == "vp-leading"  # the scheduler's own timestep_spacing
    for sampler in ("dpmpp-2m", "heun", "unipc"):
        images = gen.generate(n=2, steps=6, sampler=sampler, seed=0)
        assert images.shape == (2, 8, 8) and images.dtype == np.uint8
    assert np.array_equal(gen.generate(n=2, steps=6, seed=4), gen.generate(n=2, steps=6, seed=4))
    from diffusio.generative.editing.edits import img2img, inpaint

    x = torch.zeros(1, 1, 8, 8)
    assert img2img(gen, x, 0.5, steps=6).shape == (1, 1, 8, 8)
    mask = torch.zeros(8, 8)
    mask[:, 4:] = 1
    filled = inpaint(gen, x, mask, steps=4, resample=1).images
    assert torch.equal(filled[..., :4], x[..., :4])


def test_class_conditional_unet_takes_labels(tmp_path):
    unet = tiny_unet(classes=3)
    unet.save_pretrained(tmp_path / "cls")
    diffusers.DDPMScheduler(prediction_type="v_prediction").save_pretrained(tmp_path / "cls")
    gen = Generator.load(tmp_path / "cls")
    assert gen.class_names == ["0", "1", "2"]
    assert gen.generate(n=2, label=1, steps=4).shape == (2, 8, 8)


def test_unsupported_folders_say_what_is_supported(tmp_path, folder):
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(UsageError, match="safetensors"):
        Generator.load(broken)
    odd = tmp_path / "odd"
    shutil.copytree(folder, odd)
    config = json.loads((odd / "scheduler" / "scheduler_config.json").read_text())
    (odd / "scheduler" / "scheduler_config.json").write_text(json.dumps({**config, "beta_schedule": "sigmoid"}))
    with pytest.raises(UsageError, match="beta_schedule 'sigmoid' is not supported; supported: linear"):
        Generator.load(odd)
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionPipeline"}))
    with pytest.raises(UsageError, match="diffusio loads DDPMPipeline"):
        Generator.load(other)


def test_export_to_diffusers_says_why_not(tmp_path, capsys):
    from diffusio.cli.main import main

    assert main(["export", "fashion", "--format", "diffusers", "-o", str(tmp_path / "out")]) == 2
    assert "UNet2DModel config can express" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_evaluate_a_diffusers_folder_against_the_dataset_it_names(tmp_path, folder):
    """A diffusers folder does not say what it was trained on: ``data`` names it (``--data``)."""
    from diffusio.generative.evaluation.evaluate import evaluate

    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                 layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                 up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8)
    path = tmp_path / "pipe28"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler()).save_pretrained(path)
    with pytest.raises(UsageError, match="name it with data"):
        evaluate(str(path), n=6, steps=2)
    report = evaluate(str(path), n=6, steps=2, data="fashion-mnist")
    assert report["dataset"] == "fashion-mnist" and np.isfinite(report["model"]["fd"])
    assert report["model"]["fd"] > report["real_floor"]["fd"]  # an untrained network is far from the data
    with pytest.raises(UsageError, match="shape"):  # an 8x8 model against 28x28 images
        evaluate(str(folder), n=6, steps=2, data="fashion-mnist")


def test_evaluate_a_class_conditional_diffusers_folder(tmp_path):
    """diffusers' class-conditional UNet knows its classes only by number: label i is the dataset's
    class i, so label accuracy is scored; a model with another number of classes is refused."""
    from diffusio.generative.evaluation.evaluate import evaluate

    def save(classes):
        torch.manual_seed(0)
        unet = diffusers.UNet2DModel(sample_size=28, in_channels=1, out_channels=1, block_out_channels=(8, 16),
                                     layers_per_block=1, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                                     up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8,
                                     num_class_embeds=classes)
        path = tmp_path / f"pipe{classes}"
        diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler()).save_pretrained(path)
        return str(path)

    report = evaluate(save(10), n=20, steps=2, data="fashion-mnist")
    assert 0 <= report["label_accuracy"] <= 1 and report["real_label_accuracy"] > 0.5
    assert "class_prompts" not in report  # a class model has no prompts to check
    with pytest.raises(UsageError, match="not the classifier's"):
        evaluate(save(3), n=6, steps=2, data="fashion-mnist")
