"""Motion guidance: the guide's parts, attaching one to a run, and steering generation."""

import json
import shutil

import numpy as np
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.video.clips import MOTIONS
from diffusio.video.generator import VideoGenerator
from diffusio.video import motion
from diffusio.video.motion import (GUIDE_FILE, MotionGuide, MotionNet, attach_motion_guide, caption_features,
                                   save_motion_guide)
from diffusio.video.training import train_video

TINY = dict(frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return train_video(tmp_path_factory.mktemp("video") / "plain", steps=2, every=2, **TINY)


@pytest.fixture(scope="module")
def guided(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "guided"
    train_video(out, steps=2, every=2, **TINY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(motion, "SCORED", 60)  # the scores' plumbing, not their precision, is tested here
        guide = attach_motion_guide(out, steps=3, scale=4.0)
    return VideoGenerator.load(out), guide


def test_attached_guide_loads_with_its_scale_and_scores(guided):
    gen, guide = guided
    assert gen.motion_guide is not None and gen.config["motion_guide"]["scale"] == 4.0
    assert (gen.path / GUIDE_FILE).is_file()
    assert set(guide.scores["classifier_test_accuracy_by_sigma"]) == {"0.5", "2.0", "5.0", "10.0", "20.0"}
    assert 0 <= guide.scores["reader_held_out_accuracy"] <= 1
    for name, value in gen.motion_guide.net.state_dict().items():
        assert torch.equal(value, guide.net.state_dict()[name])


def test_guided_generation_is_seeded_and_differs_from_unguided(guided):
    gen, _ = guided
    a = gen.generate("a bag moving up", frames=4, steps=3, seed=1)
    assert np.array_equal(a, gen.generate("a bag moving up", frames=4, steps=3, seed=1, motion_guidance=4.0))
    assert not np.array_equal(a, gen.generate("a bag moving up", frames=4, steps=3, seed=1, motion_guidance=0))


def test_unconditional_rows_are_never_steered(guided):
    gen, _ = guided
    assert np.array_equal(gen.generate(None, frames=4, steps=3, seed=2, motion_guidance=50),
                          gen.generate(None, frames=4, steps=3, seed=2, motion_guidance=0))


def test_a_caption_naming_no_motion_is_not_steered_and_one_naming_a_motion_is():
    torch.manual_seed(0)
    net = MotionNet().eval()
    guide = MotionGuide(net, torch.zeros(len(MOTIONS) + 1, 4), torch.zeros(len(MOTIONS) + 1))
    inner = lambda x, sigma, cond=None: torch.zeros_like(x)  # noqa: E731
    inner.sigma_min, inner.sigma_max = 0.002, 80.0
    x = torch.randn(2, 1, 4, 32, 32)
    none, left = torch.eye(len(MOTIONS) + 1)[[len(MOTIONS), 0]]
    out = guide.guidance(inner, torch.stack([none, left]), scale=3.0)(x, torch.tensor(2.0))
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    # the step goes uphill on log p(left | x): a small move along it raises that probability
    before = torch.log_softmax(net(x[1:], torch.tensor([2.0])), 1)[0, 0]
    after = torch.log_softmax(net(x[1:] + 1e-3 * out[1:], torch.tensor([2.0])), 1)[0, 0]
    assert after > before


def test_a_model_without_a_guide_refuses_motion_guidance_but_not_zero(plain):
    assert plain.motion_guide is None
    with pytest.raises(UsageError, match="motion-guide"):
        plain.generate("a coat moving up", frames=2, steps=2, motion_guidance=2.0)
    assert plain.generate("a coat moving up", frames=2, steps=2, motion_guidance=0).shape == (1, 2, 32, 32, 1)


@pytest.mark.parametrize("scale", [-1.0, 101.0, True, "6", float("nan")])
def test_bad_motion_guidance_is_refused(guided, scale):
    with pytest.raises(UsageError, match="motion_guidance"):
        guided[0].generate("a coat", frames=2, steps=2, motion_guidance=scale)


def test_attach_refuses_models_of_unknown_motions_and_bad_settings(plain, tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(plain.path, mine)
    config = json.loads((mine / "config.json").read_text())
    config["data"] = {"name": "my-clips", "n": 10, "has_captions": False}
    (mine / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="motion is known"):
        attach_motion_guide(mine, steps=1)
    assert not (mine / GUIDE_FILE).exists()
    for bad in ({"steps": 0}, {"seed": -1}, {"scale": -2.0}):
        with pytest.raises(UsageError):
            attach_motion_guide(plain.path, **bad)
    with pytest.raises(UsageError, match="config.json"):
        attach_motion_guide(tmp_path / "nothing", steps=1)
    with pytest.raises(UsageError, match="shipped model, which already carries its motion guide.*video train"):
        attach_motion_guide("moving-fashion", steps=1)


def test_saving_a_guided_model_keeps_its_guide(guided, tmp_path):
    gen, _ = guided
    copy = VideoGenerator.load(gen.save(tmp_path / "copy"))
    assert copy.motion_guide is not None
    assert np.array_equal(copy.generate("a bag moving up", frames=4, steps=3, seed=1),
                          gen.generate("a bag moving up", frames=4, steps=3, seed=1))


def test_the_reader_gives_probabilities_and_none_takes_its_share_first():
    bias = torch.tensor([2.0, 0, 0, 0, 0, 0, 0])  # "left" favoured; none at even odds
    r = MotionGuide(MotionNet(), torch.zeros(len(MOTIONS) + 1, 4), bias).read(torch.zeros(3, 4))
    assert torch.allclose(r.sum(1), torch.ones(3))
    assert torch.allclose(r[:, -1], torch.full((3,), 0.5))
    assert r[0, 0] > 5 * r[0, 1]


def test_the_reader_reads_prompts_on_sentence_and_word_states_and_none_rows_name_no_motion():
    weight = torch.randn(len(MOTIONS) + 1, 768, generator=torch.Generator().manual_seed(0))
    guide = MotionGuide(MotionNet(), weight, torch.zeros(len(MOTIONS) + 1), word_depth=5)
    prompts = ["a coat moving up", None, "a bag creeping leftward"]
    wishes = guide.read_prompts(prompts)
    assert torch.equal(wishes[1], torch.eye(len(MOTIONS) + 1)[-1])
    features = caption_features([prompts[0], prompts[2]], 5)
    assert features.shape == (2, 768)
    assert torch.allclose(features[:, :384], caption_features([prompts[0], prompts[2]], None))
    assert torch.allclose(wishes[[0, 2]], guide.read(features))


def test_attached_guide_reads_word_states(guided):
    gen, _ = guided
    assert gen.motion_guide.word_depth == 5 and gen.motion_guide.reader_weight.shape == (len(MOTIONS) + 1, 768)
    assert gen.config["motion_guide"]["word_depth"] == 5


def test_a_guide_saved_before_word_states_still_loads_and_steers(guided, tmp_path):
    gen, guide = guided
    old = VideoGenerator.load(gen.save(tmp_path / "old"))
    sentence_only = MotionGuide(guide.net, guide.reader_weight[:, :384].clone(), guide.reader_bias)
    save_motion_guide(sentence_only, old.path, 4.0)
    config = json.loads((old.path / "config.json").read_text())
    del config["motion_guide"]["word_depth"]  # as guides were written before 2026-12-08
    (old.path / "config.json").write_text(json.dumps(config))
    old = VideoGenerator.load(old.path)
    assert old.motion_guide.word_depth is None
    clip = old.generate("a bag moving up", frames=4, steps=3, seed=1)
    assert not np.array_equal(clip, old.generate("a bag moving up", frames=4, steps=3, seed=1, motion_guidance=0))


@pytest.mark.parametrize("depth, match", [(9, "word_depth is 9"), ("5", "word_depth is '5'"),
                                          (None, r"shape \(7, 768\); expected \(7, 384\)")])
def test_a_guide_whose_reader_does_not_fit_its_word_depth_is_refused(guided, tmp_path, depth, match):
    gen, _ = guided
    bad = gen.save(tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text())
    config["motion_guide"]["word_depth"] = depth  # None: a reader of word states said to read none
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match=match):
        VideoGenerator.load(bad)


def test_agreement_weighs_the_classifiers_motions_by_the_readers_and_none_always_agrees():
    torch.manual_seed(0)
    guide = MotionGuide(MotionNet().eval(), torch.zeros(len(MOTIONS) + 1, 4), torch.zeros(len(MOTIONS) + 1))
    clips = np.random.default_rng(0).integers(0, 256, (3, 4, 32, 32, 1), dtype=np.uint8)
    eye = torch.eye(len(MOTIONS) + 1)
    wishes = torch.stack([eye[-1], eye[0], 0.5 * eye[1] + 0.5 * eye[-1]])  # none; left; right or none
    seen = torch.softmax(guide.net(motion.to_tensor(clips), torch.full((3,), motion.SIGMA_RANGE[0])), 1)
    agree = guide.agreement(clips, wishes)
    assert agree[0] == 1
    assert torch.allclose(agree[1:], torch.stack([seen[1, 0], 0.5 + 0.5 * seen[2, 1]]))


def test_the_motion_check_redraws_only_clips_seen_moving_otherwise_and_is_seeded(guided, monkeypatch):
    import warnings

    gen, _ = guided
    prompts = ["a bag moving up", "a coat moving to the left", "a dress bouncing up and down"]
    first = gen.generate(prompts, n=2, frames=4, steps=2, seed=3, redraws=0)
    wishes = gen.motion_guide.read_prompts([p for p in prompts for _ in range(2)])
    before = gen.motion_guide.agreement(first, wishes)
    monkeypatch.setattr(motion, "MOVES_AT", float(before.median()))  # some clips pass, some do not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = gen.generate(prompts, n=2, frames=4, steps=2, seed=3, redraws=3, motion_check=True)
        assert np.array_equal(again, gen.generate(prompts, n=2, frames=4, steps=2, seed=3, redraws=3,
                                                  motion_check=True))
    after = gen.motion_guide.agreement(again, wishes)
    kept = before >= motion.MOVES_AT
    assert kept.any() and (~kept).any()
    for i in range(len(first)):
        if kept[i]:
            assert np.array_equal(again[i], first[i])   # a clip seen moving as asked is never drawn again
        else:
            assert after[i] >= before[i]                # a clip is replaced only by a better try
    monkeypatch.setattr(motion, "MOVES_AT", 1.01)  # nothing passes
    with pytest.warns(UserWarning, match="2 of 2 clips still do not move as prompted after 1 redraws"):
        gen.generate("a bag moving up", n=2, frames=4, steps=1, seed=0, redraws=1, motion_check=True)


def test_the_motion_check_is_refused_without_a_guide_or_as_a_non_boolean(plain, guided):
    with pytest.raises(UsageError, match="motion_check needs a motion guide.*motion-guide"):
        plain.generate("a coat moving up", frames=2, steps=1, redraws=1, motion_check=True)
    with pytest.raises(UsageError, match="redraws 1 needs a garment check"):  # nothing to redraw by
        guided[0].generate("a coat moving up", frames=2, steps=1, redraws=1)
    with pytest.raises(UsageError, match="motion_check must be True or False"):
        guided[0].generate("a coat moving up", frames=2, steps=1, redraws=1, motion_check="yes")
