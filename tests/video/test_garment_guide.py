"""Garment guidance: a clip read as one garment throughout, the guide attached to a run, and steering."""

import json
import shutil

import numpy as np
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.generative.conditioning.class_guide import NoisyClassifier
from diffusio.generative.core.denoiser import EDMDenoiser
from diffusio.generative.core.guidance import ClassifierGuidance
from diffusio.video import garment_guide
from diffusio.video.garment_guide import GUIDE_FILE, ClipGarments, attach_garment_guide, load_garment_guide
from diffusio.video.generator import VideoGenerator
from diffusio.video.training import train_video

TINY = dict(frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return train_video(tmp_path_factory.mktemp("video") / "plain", steps=2, every=2, **TINY)


@pytest.fixture(scope="module")
def guided(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "guided"
    train_video(out, steps=2, every=2, **TINY)
    with pytest.MonkeyPatch.context() as mp:  # the plumbing, not the classifier's precision, is tested here
        mp.setattr(garment_guide, "SCORED", 20)
        mp.setattr(garment_guide, "STILLS", 256)
        guide = attach_garment_guide(out, steps=3, scale=2.0)
    return VideoGenerator.load(out), guide


class FrameByBrightness(torch.nn.Module):
    """A frame classifier with two classes: 0 when the frame is bright, 1 when dark."""

    def forward(self, x, sigma):
        mean = x.mean((1, 2, 3))
        return torch.stack([4 * mean, -4 * mean], dim=1)


def test_a_clip_is_read_as_one_garment_throughout():
    x = -torch.ones(1, 1, 3, 2, 2)
    x[0, 0, 1] = 1.0  # one bright frame among two dark ones
    frame_logp = torch.log_softmax(FrameByBrightness()(x[0].transpose(0, 1), None), dim=1)
    clip = ClipGarments(FrameByBrightness())(x, torch.ones(1))
    assert torch.allclose(clip[0], frame_logp.sum(0))  # the frames' log-probabilities, summed
    assert clip[0, 1] > clip[0, 0]  # mostly dark: "dark throughout" is likelier


def test_guidance_pushes_every_frame_toward_the_wished_garment_and_leaves_unwished_rows():
    denoiser = EDMDenoiser(lambda x, c_noise, cond: torch.zeros_like(x))
    x = torch.zeros(2, 1, 4, 3, 3)
    steered = ClassifierGuidance(denoiser, ClipGarments(FrameByBrightness()), torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
                                 scale=2.0)
    out = steered(x, torch.tensor(1.0)) - denoiser(x, torch.tensor(1.0))
    assert (out[0] > 0).all()  # every pixel of every frame brighter: toward "bright throughout"
    assert (out[1] == 0).all()  # a row that wishes for nothing is not steered


def test_attached_guide_loads_with_its_scale_and_scores(guided):
    gen, guide = guided
    entry = gen.config["garment_guide"]
    assert entry["scale"] == 2.0 and (gen.path / GUIDE_FILE).is_file()
    assert set(guide.scores["classifier_test_accuracy_by_sigma"]) == {"0.1", "0.5", "1.0", "2.0", "5.0", "10.0"}
    assert 0 <= guide.scores["reader_held_out_accuracy"] <= 1
    loaded = load_garment_guide(gen.path, gen.config)
    for name, value in loaded.net.state_dict().items():
        assert torch.equal(value, guide.net.state_dict()[name])
    assert loaded.class_names[0] == "T-shirt/top" and len(loaded.class_names) == 10


def test_the_reader_names_the_prompts_garment_from_the_shipped_video_captions(guided):
    gen, _ = guided
    guide = load_garment_guide(gen.path, gen.config)
    wishes = guide.wishes(gen.embed(["a coat moving up", "an ankle boot drifting right", "a bag bouncing"]))
    assert [guide.class_names[k] for k in wishes.argmax(1).tolist()] == ["Coat", "Ankle boot", "Bag"]


def test_guided_generation_is_seeded_uses_the_default_and_differs_from_unguided(guided):
    gen, _ = guided
    a = gen.generate("a bag moving up", frames=4, steps=3, seed=1)
    assert np.array_equal(a, gen.generate("a bag moving up", frames=4, steps=3, seed=1, garment_guidance=2.0))
    assert not np.array_equal(a, gen.generate("a bag moving up", frames=4, steps=3, seed=1, garment_guidance=0))


def test_unconditional_rows_are_never_steered(guided):
    gen, _ = guided
    assert np.array_equal(gen.generate(None, frames=4, steps=3, seed=2, garment_guidance=50),
                          gen.generate(None, frames=4, steps=3, seed=2, garment_guidance=0))


def test_a_model_without_a_guide_refuses_garment_guidance_but_not_zero(plain):
    gen = VideoGenerator.load(plain.path)
    with pytest.raises(UsageError, match="garment-guide"):
        gen.generate("a coat moving up", frames=4, steps=2, garment_guidance=1.0)
    assert gen.generate("a coat moving up", frames=4, steps=2, garment_guidance=0).shape == (1, 4, 32, 32, 1)


def test_nudges_without_a_guide_are_refused_before_any_clip_is_drawn(guided, tmp_path, monkeypatch):
    from diffusio.video import garment_check

    shutil.copytree(guided[0].path, tmp_path / "unguided")
    config = json.loads((tmp_path / "unguided" / "config.json").read_text())
    del config["garment_guide"]
    (tmp_path / "unguided" / "config.json").write_text(json.dumps(config))
    garment_check.attach_garment_check(tmp_path / "unguided", clips=8, steps=2, redraws=1)
    gen = VideoGenerator.load(tmp_path / "unguided")
    monkeypatch.setattr(gen, "motion_guided", lambda *a: pytest.fail("a clip was drawn"))
    with pytest.raises(UsageError, match="nudges need a garment guide"):
        gen.generate("a coat moving up", frames=4, steps=2, nudges=(3.0,))


@pytest.mark.parametrize("scale", [-1.0, float("nan"), True])
def test_bad_garment_guidance_is_refused(guided, scale):
    with pytest.raises(UsageError, match="garment_guidance"):
        guided[0].generate("a coat moving up", frames=4, steps=2, garment_guidance=scale)


def test_attach_refuses_other_models_and_bad_settings(plain, tmp_path):
    mnist = tmp_path / "mnist"
    shutil.copytree(plain.path, mnist)
    config = json.loads((mnist / "config.json").read_text())
    config["data"]["source"] = "mnist5k"
    (mnist / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="moving-fashion"):
        attach_garment_guide(mnist, steps=1)
    with pytest.raises(UsageError, match="scale"):
        attach_garment_guide(plain.path, steps=1, scale=-1)
    with pytest.raises(UsageError, match="seed"):
        attach_garment_guide(plain.path, steps=1, seed=-1)
    with pytest.raises(UsageError, match="steps"):
        attach_garment_guide(plain.path, steps=0)
    with pytest.raises(UsageError, match="shipped"):
        attach_garment_guide("moving-fashion", steps=1)
    assert "garment_guide" not in json.loads((plain.path / "config.json").read_text())  # nothing written


def test_a_broken_guide_entry_is_named(guided, tmp_path):
    gen, _ = guided
    broken = tmp_path / "broken"
    shutil.copytree(gen.path, broken)
    config = json.loads((broken / "config.json").read_text())
    config["garment_guide"]["class_names"] = ["Coat"]
    with pytest.raises(UsageError, match="garment-guide"):
        load_garment_guide(broken, config)


def test_saving_a_guided_model_keeps_its_guide(guided, tmp_path):
    gen, _ = guided
    gen.save(tmp_path / "copy")
    again = VideoGenerator.load(tmp_path / "copy")
    assert (tmp_path / "copy" / GUIDE_FILE).is_file() and again.config["garment_guide"]["scale"] == 2.0
    assert np.array_equal(again.generate("a coat moving up", frames=4, steps=2, seed=3),
                          gen.generate("a coat moving up", frames=4, steps=2, seed=3))


def test_the_frame_classifier_is_the_image_models_noise_aware_one(guided):
    assert isinstance(guided[1].net, NoisyClassifier) and guided[1].net.config["width"] == 32


def test_nudges_steer_only_the_redraw_rounds(guided, monkeypatch, tmp_path):
    """A nudged redraw draws the missed clip again with garment guidance at the round's scale; the
    first draw is that of an unnudged call."""
    from diffusio.video import garment_check

    shutil.copytree(guided[0].path, tmp_path / "checked")
    garment_check.attach_garment_check(tmp_path / "checked", clips=8, steps=2, redraws=0)
    gen = VideoGenerator.load(tmp_path / "checked")
    monkeypatch.setattr(garment_check, "NAMED_AT", 1.01)  # every clip misses: every round redraws all
    seen = []
    steer = gen.garment_guided

    def spy(denoiser, cond, scale):
        seen.append(scale)
        return steer(denoiser, cond, scale)

    monkeypatch.setattr(gen, "garment_guided", spy)
    prompts = ["a coat moving up", "a bag falling"]
    with pytest.warns(UserWarning, match="still do not show"):
        nudged = gen.generate(prompts, frames=4, steps=2, seed=4, redraws=2, nudges=(3.0,), garment_guidance=0)
    assert seen == [0, 3.0, 0]  # the first draw, round 1 nudged, round 2 as the first
    with pytest.warns(UserWarning):
        again = gen.generate(prompts, frames=4, steps=2, seed=4, redraws=2, nudges=(3.0,), garment_guidance=0)
    assert np.array_equal(nudged, again)
    with pytest.warns(UserWarning):
        plain = gen.generate(prompts, frames=4, steps=2, seed=4, redraws=2, garment_guidance=0)
    assert not np.array_equal(nudged, plain)
    with pytest.raises(UsageError, match="nudges"):
        gen.generate(prompts, frames=4, steps=2, redraws=1, nudges=(3.0, 3.0))
