"""Garment redraws: the check that reads the object in every frame, and clips drawn again."""

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.video import garment_check
from diffusio.video.clips import caption_classes, all_captions, moving_clips
from diffusio.video.garment_check import CHECK_FILE, attach_garment_check, load_garment_check, train_garment_check
from diffusio.video.generator import VideoGenerator
from diffusio.video.training import train_video

TINY = dict(frames=4, batch_size=2, base=8, mults=(1, 2), quiet=True, bf16="off")
PROMPTS = ["a coat moving up", "a bag bouncing up and down", "a sneaker moving to the left"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "tiny"
    train_video(out, steps=2, every=2, **TINY)
    attach_garment_check(out, clips=8, steps=2, redraws=2)
    return VideoGenerator.load(out)


@pytest.fixture(scope="module")
def shipped_check():
    gen = VideoGenerator.load()
    return load_garment_check(gen.path, gen.config), gen


def test_the_shipped_check_names_the_garment_of_real_clips_and_not_another(shipped_check):
    check, _ = shipped_check
    data = moving_clips(60, split="test", seed=5)
    classes = torch.from_numpy(data.classes[:, 0])
    right = torch.nn.functional.one_hot(classes, 10).float()
    wrong = torch.nn.functional.one_hot((classes + 5) % 10, 10).float()
    named, other = check.scores(data.clips, right), check.scores(data.clips, wrong)
    assert named.shape == (60,)
    assert float((named >= garment_check.NAMED_AT).float().mean()) >= 0.8   # the weakest frame of real clips
    assert float((other >= garment_check.NAMED_AT).float().mean()) <= 0.05  # five classes away: almost never
    assert check.scores_on_real["test_crop_accuracy"] >= 0.83   # the judge names 0.835 of real frames


def test_the_shipped_check_reads_the_captions_garment(shipped_check):
    check, gen = shipped_check
    wishes = check.wishes(gen.embed(["a coat moving up", "a sneaker drifting toward the left edge", None]))
    names = check.guide.class_names
    assert wishes[0].argmax() == names.index("Coat") and wishes[1].argmax() == names.index("Sneaker")
    assert float(wishes[2].abs().sum()) == 0   # unconditional: wishes nothing
    assert check.scores_on_real["reader_held_out_accuracy"] >= 0.95


def test_caption_classes_follow_all_captions():
    (texts, _), classes = all_captions(), caption_classes()
    assert len(texts) == len(classes)
    assert "coat" in texts[classes.index("Coat")] and "sneaker" in texts[classes.index("Sneaker")]


def test_attaching_writes_the_check_and_its_default_and_loads_back(tiny):
    entry = tiny.config["garment_check"]
    assert (tiny.path / CHECK_FILE).is_file() and entry["object_size"] == 16
    assert tiny.config["sampling"]["redraws"] == 2
    check = load_garment_check(tiny.path, tiny.config)
    assert set(check.scores_on_real) == {"test_crop_accuracy", "test_clips_named", "reader_held_out_accuracy"}


def test_redraws_keep_named_clips_replace_only_better_ones_and_are_seeded(tiny, monkeypatch):
    check = tiny.garment_check(3)
    first = tiny.generate(PROMPTS, n=2, steps=2, seed=7, redraws=0)
    wishes = check.wishes(tiny.embed([p for p in PROMPTS for _ in range(2)]))
    before = check.scores(first, wishes)
    monkeypatch.setattr(garment_check, "NAMED_AT", float(before.median()))  # some clips pass, some do not
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = tiny.generate(PROMPTS, n=2, steps=2, seed=7, redraws=3)
        assert np.array_equal(again, tiny.generate(PROMPTS, n=2, steps=2, seed=7, redraws=3))
    after = check.scores(again, wishes)
    kept = before >= garment_check.NAMED_AT
    assert kept.any() and (~kept).any()
    for i in range(len(first)):
        if kept[i]:
            assert np.array_equal(again[i], first[i])   # a named clip is never drawn again
        else:
            assert after[i] >= before[i]                # a clip is replaced only by a better try
    assert (after[~kept] > before[~kept]).any()


def test_clips_still_unnamed_after_the_last_redraw_are_kept_with_a_warning(tiny, monkeypatch):
    monkeypatch.setattr(garment_check, "NAMED_AT", 1.01)  # nothing can pass
    with pytest.warns(UserWarning, match="2 of 2 clips still do not show the prompted garment"):
        clips = tiny.generate("a dress drifting right", n=2, steps=1, seed=0)   # the model's 2 redraws
    assert clips.shape == (2, 4, 32, 32, 1)


def test_unconditional_clips_are_never_redrawn(tiny, monkeypatch):
    monkeypatch.setattr(garment_check, "NAMED_AT", 1.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = tiny.generate(None, n=2, steps=1, seed=0, redraws=2)
    assert not [w for w in caught if "prompted garment" in str(w.message)]  # nothing was asked for, nothing missed
    assert np.array_equal(clips, tiny.generate(None, n=2, steps=1, seed=0, redraws=0))


@pytest.mark.parametrize("bad", [-1, 21, 1.5, True, "2"])
def test_bad_redraws_are_refused(tiny, bad):
    with pytest.raises(UsageError, match="redraws must be a whole number from 0 to 20"):
        tiny.generate("a coat moving up", steps=1, redraws=bad)


def test_a_model_without_a_check_refuses_redraws_but_not_zero(tiny, tmp_path):
    out = tmp_path / "nocheck"
    shutil.copytree(tiny.path, out)
    config = json.loads((out / "config.json").read_text())
    del config["garment_check"], config["sampling"]["redraws"]
    (out / "config.json").write_text(json.dumps(config))
    gen = VideoGenerator.load(out)
    gen.generate("a coat moving up", steps=1)
    with pytest.raises(UsageError, match="needs a garment check"):
        gen.generate("a coat moving up", steps=1, redraws=1)


def test_a_continued_run_does_not_inherit_the_parents_redraws(tiny, tmp_path):
    child = train_video(tmp_path / "child", steps=1, every=1, init=tiny.path, **TINY)
    assert "redraws" not in child.config["sampling"] and "garment_check" not in child.config


def test_attach_refuses_other_models_and_bad_settings(tiny, tmp_path):
    mnist = train_video(tmp_path / "digits", data="moving-mnist", steps=1, every=1, **TINY)
    with pytest.raises(UsageError, match="not a video model trained on moving-fashion"):
        attach_garment_check(mnist.path, clips=2, steps=1)
    with pytest.raises(UsageError, match="redraws must be"):
        attach_garment_check(tiny.path, clips=2, steps=1, redraws=-1)
    with pytest.raises(UsageError, match="steps must be"):
        train_garment_check(clips=2, steps=0)


@pytest.mark.slow
def test_the_shipped_default_redraws_clips_that_lose_their_garment(shipped_check):
    """moving-fashion samples with 2 redraws by default (docs/benchmarks-video.md, "Garment redraws")."""
    check, gen = shipped_check
    assert gen.config["sampling"]["redraws"] == 2 and gen.config["sampling"]["motion_check"] is True
    prompts = ["a coat moving up", "a pullover drifting right", "a dress bouncing up and down", "a sandal falling"]
    wishes = check.wishes(gen.embed(prompts))
    plain = gen.generate(prompts, seed=0, redraws=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        redrawn = gen.generate(prompts, seed=0, motion_check=False)
        checked = gen.generate(prompts, seed=0)   # the default: the motion check too
    before, after = check.scores(plain, wishes), check.scores(redrawn, wishes)
    assert (after >= before).all()
    assert int((after >= garment_check.NAMED_AT).sum()) >= int((before >= garment_check.NAMED_AT).sum())
    assert (after > before).any() or bool((before >= garment_check.NAMED_AT).all())
    moves = gen.motion_guide.read_prompts(prompts)
    both = [torch.minimum(check.scores(c, wishes), gen.motion_guide.agreement(c, moves)) for c in (plain, checked)]
    assert (both[1] >= both[0]).all()   # each clip kept, or replaced by one better on its weaker check


def test_saving_a_model_keeps_its_garment_check(tiny, tmp_path):
    tiny.save(tmp_path / "copy")
    again = VideoGenerator.load(tmp_path / "copy")
    assert (tmp_path / "copy" / CHECK_FILE).read_bytes() == (tiny.path / CHECK_FILE).read_bytes()
    assert np.array_equal(again.generate("a coat moving up", steps=1, seed=2, redraws=1),
                          tiny.generate("a coat moving up", steps=1, seed=2, redraws=1))
    tiny.save(tiny.path)  # into its own folder: the check stays as it was


@pytest.mark.parametrize("seed", [-1, 2 ** 32, 1.5, True])
def test_bad_seeds_are_refused_before_any_work(tiny, seed):
    with pytest.raises(UsageError, match="seed must be an integer"):
        tiny.generate("a coat moving up", steps=1, seed=seed)
