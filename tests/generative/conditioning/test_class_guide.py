"""Class guidance: a noise-aware classifier and a caption reader steer image sampling toward the class
a prompt names (classifier guidance, Dhariwal & Nichol 2021)."""

import json
import shutil

import numpy as np
import pytest
import torch

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.generative import Generator
from diffusio.generative.checkpoint.models import resolve_model_dir
from diffusio.generative.conditioning import class_guide
from diffusio.generative.conditioning.class_guide import (GUIDE_FILE, NAMED_AT, ClassGuide, NoisyClassifier,
                                                         attach_class_guide, load_class_guide)
from diffusio.generative.core.guidance import ClassifierGuidance

KW = dict(n=3, steps=4, seed=0, autoguidance=1.0)


@pytest.fixture(scope="module")
def guided(tmp_path_factory):
    """The shipped fashion network with a briefly trained class guide in its own folder."""
    folder = tmp_path_factory.mktemp("cg") / "fashion-cg"
    shutil.copytree(resolve_model_dir("fashion"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["sampling"].pop("classifier_guidance", None)
    config.pop("class_guide", None)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / GUIDE_FILE).unlink(missing_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(class_guide, "SCORED", 200)  # the scores' plumbing, not their precision, is tested here
        guide = attach_class_guide(folder, steps=10, scale=2.0, seed=0)
    return folder, guide


def test_attach_writes_the_guide_and_the_default_scale(guided):
    folder, guide = guided
    config = json.loads((folder / "config.json").read_text())
    assert config["sampling"]["classifier_guidance"] == 2.0
    assert config["class_guide"]["class_names"] == guide.class_names == config["conditioning"]["class_names"]
    loaded = load_class_guide(folder, config)
    for a, b in zip(loaded.net.state_dict().values(), guide.net.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(loaded.check.state_dict().values(), guide.check.state_dict().values()):
        assert torch.equal(a, b)
    assert 0 <= guide.scores["check_test_accuracy"] <= 1
    # the reader, fitted on the training phrasings, reads every held-out paraphrase's class
    assert guide.scores["reader_paraphrase_accuracy"] == 1.0
    assert set(guide.scores["classifier_test_accuracy_by_sigma"]) == {"0.1", "0.5", "1.0", "2.0", "5.0", "10.0"}


def test_guided_sampling_is_seeded_differs_from_unguided_and_is_the_default(guided):
    folder, _ = guided
    gen = Generator.load(folder)
    default = gen.sample("a coat", **KW).images
    assert torch.equal(default, gen.sample("a coat", classifier_guidance=2.0, **KW).images)
    assert not torch.equal(default, gen.sample("a coat", classifier_guidance=0, **KW).images)
    assert torch.equal(default, Generator.load(folder).sample("a coat", **KW).images)  # same seed, same bytes


def test_unconditional_rows_are_never_steered(guided):
    gen = Generator.load(guided[0])
    assert torch.equal(gen.sample(None, classifier_guidance=50, **KW).images,
                       gen.sample(None, classifier_guidance=0, **KW).images)


def test_the_reader_reads_prompts_and_labels_and_leaves_empty_rows_alone(guided):
    folder, guide = guided
    gen = Generator.load(folder)
    wishes = guide.wishes(torch.cat([gen.condition(1, "a cosy knit sweater"), gen.condition(1, label="Bag"),
                                     torch.zeros(1, 384)]))
    assert wishes[0].argmax() == guide.class_names.index("Pullover")
    assert wishes[1].argmax() == guide.class_names.index("Bag")
    assert wishes[2].sum() == 0 and torch.allclose(wishes[:2].sum(1), torch.ones(2))


def test_a_class_model_reads_its_one_hot_rows():
    guide = ClassGuide(NoisyClassifier(classes=3), torch.zeros(0, 0), torch.zeros(0), ["a", "b", "c"])
    assert torch.equal(guide.wishes(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])),
                       torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))


def test_the_step_goes_uphill_on_the_wished_class_and_only_in_the_interval():
    torch.manual_seed(0)
    net = NoisyClassifier(width=8).eval()
    inner = lambda x, sigma, cond=None: torch.zeros_like(x)  # noqa: E731
    inner.sigma_min, inner.sigma_max = 0.002, 80.0
    x = torch.randn(2, 1, 28, 28)
    wishes = torch.tensor([[0.0] * 10, [0.0, 0.0, 1.0] + [0.0] * 7])
    with torch.inference_mode():  # as Generator.sample runs it
        out = ClassifierGuidance(inner, net, wishes, 3.0)(x, torch.tensor(2.0))
        outside = ClassifierGuidance(inner, net, wishes, 3.0, interval=(3.0, 5.0))(x, torch.tensor(2.0))
    assert torch.equal(out[0], torch.zeros_like(out[0])) and torch.equal(outside, torch.zeros_like(outside))
    before = torch.log_softmax(net(x[1:], torch.tensor([2.0])), 1)[0, 2]
    after = torch.log_softmax(net(x[1:] + 1e-3 * out[1:], torch.tensor([2.0])), 1)[0, 2]
    assert after > before


@pytest.mark.parametrize("wishes", [torch.tensor([[-1.0, 2.0]]), torch.tensor([1.0, 0.0]),
                                    torch.tensor([[float("nan"), 1.0]])])
def test_bad_wishes_are_refused(wishes):
    inner = lambda x, sigma, cond=None: x  # noqa: E731
    inner.sigma_min, inner.sigma_max = 0.002, 80.0
    with pytest.raises(UsageError, match="wishes"):
        ClassifierGuidance(inner, NoisyClassifier(classes=2), wishes, 1.0)


def test_a_model_without_a_guide_refuses_classifier_guidance_but_not_zero():
    gen = Generator.load("fashion-diverse")
    with pytest.raises(UsageError, match="class-guide"):
        gen.sample("a coat", classifier_guidance=2.0, **KW)
    assert gen.sample("a coat", classifier_guidance=0, **KW).images.shape == (3, 1, 28, 28)


@pytest.mark.parametrize("scale", [-1.0, 101.0, True, float("nan")])
def test_bad_classifier_guidance_is_refused(guided, scale):
    with pytest.raises(UsageError, match="classifier_guidance"):
        Generator.load(guided[0]).sample("a coat", classifier_guidance=scale, **KW)


def test_attach_refuses_models_it_cannot_guide(tmp_path):
    folder = tmp_path / "plain"
    shutil.copytree(resolve_model_dir("fashion"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["conditioning"] = {"kind": "none"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="not conditioned on classes or text"):
        attach_class_guide(folder, steps=1)
    with pytest.raises(UsageError, match="steps"):
        attach_class_guide(folder, steps=0)
    with pytest.raises(UsageError, match="shipped model, which already carries its class guide"):
        attach_class_guide("fashion", steps=1)


def test_a_corrupt_guide_file_is_named(guided, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(guided[0], folder)
    (folder / GUIDE_FILE).write_bytes(b"not safetensors")
    with pytest.raises(UsageError, match="corrupt or truncated"):
        Generator.load(folder).sample("a coat", **KW)


def test_cli_trains_a_guide_and_generates_with_it(guided, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(class_guide, "SCORED", 200)
    folder = tmp_path / "cli"
    shutil.copytree(guided[0], folder)
    assert main(["class-guide", str(folder), "--steps", "5", "--scale", "1.5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "class guide written to" in out and "paraphrases" in out
    assert json.loads((folder / "config.json").read_text())["sampling"]["classifier_guidance"] == 1.5
    png = tmp_path / "coat.png"
    assert main(["generate", "a coat", "-n", "2", "--steps", "3", "--model", str(folder), "--autoguidance", "1",
                 "--classifier-guidance", "3", "-o", str(png)]) == 0
    assert png.stat().st_size > 0
    assert main(["class-guide", str(folder / "nowhere")]) != 0


def test_a_model_whose_classes_differ_from_its_data_is_refused_before_training(tmp_path):
    folder = tmp_path / "renamed"
    shutil.copytree(resolve_model_dir("fashion"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["conditioning"]["class_names"] = [f"c{i}" for i in range(10)]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="are not the model's"):
        attach_class_guide(folder, steps=10 ** 9)  # refused before a single step


# ---------------------------------------------------------------- redraws (the shipped guide)
REDRAW = dict(steps=6, seed=0, autoguidance=2.0, guidance=1.0)


def test_redraws_keep_named_images_and_replace_only_unnamed_ones():
    gen = Generator.load("fashion")
    guide = load_class_guide(gen.model.path, gen.model.config)
    prompts = ["a T-shirt", "a shirt", "a pullover", "a coat"] * 6
    wishes = guide.wishes(gen.condition(len(prompts), prompts))
    bars = guide.named_at(wishes, gen.defaults.get("redraw_below", {}))  # the model's own: the shirt's is lower
    first = gen.sample(prompts, len(prompts), redraws=0, **REDRAW)
    again = gen.sample(prompts, len(prompts), redraws=3, **REDRAW)
    before, after = guide.named(first.images, wishes), guide.named(again.images, wishes)
    missed = before < bars
    assert missed.any() and (~missed).any()  # the test needs both kinds of image
    assert torch.equal(again.images[~missed], first.images[~missed])  # a named image is never drawn again
    assert (after[missed] >= before[missed]).all()  # each redrawn image is its best try
    assert (after >= bars).sum() > (before >= bars).sum()
    assert again.unnamed == int((after < bars).sum())
    assert again.nfe > first.nfe  # the redraws' network evaluations are counted
    assert torch.equal(again.images, gen.sample(prompts, len(prompts), redraws=3, **REDRAW).images)  # seeded


def test_redraws_leave_unconditional_rows_alone_and_default_to_the_models():
    gen = Generator.load("fashion")
    assert torch.equal(gen.sample(None, 4, redraws=5, **REDRAW).images, gen.sample(None, 4, redraws=0, **REDRAW).images)
    default = gen.sample("a coat", 4, **REDRAW).images
    assert torch.equal(default, gen.sample("a coat", 4, redraws=gen.defaults["redraws"], **REDRAW).images)
    gen.defaults["redraws"] = 0
    assert torch.equal(gen.sample("a coat", 4, **REDRAW).images, gen.sample("a coat", 4, redraws=0, **REDRAW).images)


@pytest.mark.parametrize("redraws", [-1, 21, True, 1.5, "2"])
def test_bad_redraws_are_refused(redraws):
    with pytest.raises(UsageError, match="redraws"):
        Generator.load("fashion").sample("a coat", redraws=redraws, **KW)


def test_a_model_without_a_guide_refuses_redraws_but_not_zero():
    gen = Generator.load("fashion-diverse")
    with pytest.raises(UsageError, match="redraws 2 needs a class guide"):
        gen.sample("a coat", redraws=2, **KW)
    assert gen.sample("a coat", redraws=0, **KW).images.shape == (3, 1, 28, 28)


def test_cli_generates_with_redraws_and_says_what_stays_unnamed(tmp_path, capsys):
    png = tmp_path / "shirts.png"
    assert main(["generate", "a shirt", "-n", "8", "--steps", "2", "--autoguidance", "1", "--guidance", "1",
                 "--redraws", "1", "-o", str(png)]) == 0
    err = capsys.readouterr().err
    assert png.stat().st_size > 0
    assert "after the last redraw" in err  # two steps make blurs the guide cannot name: the user is told
    assert main(["generate", "a coat", "--redraws", "21", "-o", str(tmp_path / "x.png")]) != 0
    assert "redraws must be a whole number from 0 to 20" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_a_class_bar_redraws_that_class_by_its_own_probability():
    """``redraw_below`` sets one class's bar: 0 never redraws a shirt; the other classes keep 0.8."""
    gen = Generator.load("fashion")
    guide = load_class_guide(gen.model.path, gen.model.config)
    prompts = ["a shirt", "a coat"] * 8
    wishes = guide.wishes(gen.condition(len(prompts), prompts))
    bars = guide.named_at(wishes, {"Shirt": 0.0})
    shirt = torch.tensor([p == "a shirt" for p in prompts])
    assert (bars[shirt] < 0.05).all() and torch.allclose(bars[~shirt], torch.tensor(NAMED_AT), atol=0.05)
    first = gen.sample(prompts, len(prompts), redraws=0, **REDRAW)
    freed = gen.sample(prompts, len(prompts), redraws=3, redraw_below={"Shirt": 0.0}, **REDRAW)
    plain = gen.sample(prompts, len(prompts), redraws=3, redraw_below={"Shirt": NAMED_AT}, **REDRAW)
    before = guide.named(first.images, wishes)
    assert (before[shirt] < NAMED_AT).any()  # the test needs a shirt the default bar would redraw
    assert torch.equal(freed.images[shirt], first.images[shirt])  # no shirt drawn again
    assert not torch.equal(plain.images[shirt], first.images[shirt])
    kept = ~shirt & (before >= NAMED_AT)  # coats keep the default bar: named ones stay, the rest improve
    assert torch.equal(freed.images[kept], first.images[kept])
    assert (guide.named(freed.images, wishes)[~shirt] >= before[~shirt]).all()
    gen.defaults["redraw_below"] = {"Shirt": 0.0}  # the model's own bar is the default
    assert torch.equal(gen.sample(prompts, len(prompts), redraws=3, **REDRAW).images, freed.images)


def test_class_bars_weigh_the_wished_classes_and_leave_unconditional_rows_at_the_default():
    guide = ClassGuide(NoisyClassifier(classes=3), torch.empty(0), torch.empty(0), ["a", "b", "c"])
    wishes = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 0]])
    assert torch.allclose(guide.named_at(wishes, {"b": 0.2}), torch.tensor([NAMED_AT, 0.2, 0.5, NAMED_AT]))
    soft = torch.softmax(torch.randn(1000, 3, generator=torch.Generator().manual_seed(0)), 1)
    # no bar of its own: exactly the default's bar, so the images of before come back byte for byte
    assert torch.equal(guide.named_at(soft, {}), torch.full((1000,), NAMED_AT))
    assert torch.equal(guide.named_at(soft * torch.tensor([1.0, 0, 1]), {"b": 0.2}), torch.full((1000,), NAMED_AT))


@pytest.mark.parametrize("below, match", [({"Sock": 0.3}, "must name classes of the model"),
                                          ({"Shirt": 1.5}, "probability"), ({"Shirt": True}, "probability"),
                                          ([("Shirt", 0.3)], "map class names"),
                                          ({"Shirt": 0.3}, "needs images that are drawn again")])
def test_bad_or_idle_class_bars_are_refused(below, match):
    with pytest.raises(UsageError, match=match):
        Generator.load("fashion").sample("a coat", redraws=0, redraw_below=below, **KW)


def test_given_bars_join_the_models_and_a_bad_config_bar_is_named(tmp_path):
    gen = Generator.load("fashion")
    gen.defaults["redraw_below"] = {"Shirt": 0.3}
    assert gen._redraw_bars({"Coat": np.float32(0.5)}) == {"Shirt": 0.3, "Coat": 0.5}
    assert gen._redraw_bars({"Shirt": 0.8}) == {"Shirt": 0.8}  # 0.8 puts the default back
    gen.defaults["redraw_below"] = {"Sock": 0.3}
    with pytest.raises(UsageError, match=r"config.json \(sampling, redraw_below\) must name classes"):
        gen.sample("a coat", redraws=1, **KW)


def test_cli_takes_class_bars(tmp_path, capsys):
    png = tmp_path / "s.png"
    assert main(["generate", "a shirt", "-n", "2", "--steps", "2", "--redraws", "1", "--redraw-below", "Shirt=0.3",
                 "--redraw-below", "T-shirt/top=0.5", "-o", str(png)]) == 0 and png.exists()
    for bad in ("Shirt", "Shirt=2", "=0.5"):
        with pytest.raises(SystemExit):  # argparse: not CLASS=P
            main(["generate", "a shirt", "-n", "2", "--redraw-below", bad, "-o", str(tmp_path / "t.png")])
    for bad in (["Sock=0.3"], ["Shirt=0.3", "Shirt=0.5"]):
        argv = [arg for bar in bad for arg in ("--redraw-below", bar)]
        assert main(["generate", "a shirt", "-n", "2", *argv, "-o", str(tmp_path / "t.png")]) == 2
        assert "--redraw-below" in capsys.readouterr().err and not (tmp_path / "t.png").exists()


# ---------------------------------------------------------------- nudged redraws
def test_nudged_redraws_start_again_from_the_images_own_noise():
    """A nudge redraws a missed image from its own start noise, steered toward its class: it stays
    closer to the first draw than a redraw from new noise, named images are untouched, and it is seeded."""
    gen = Generator.load("fashion")
    guide = load_class_guide(gen.model.path, gen.model.config)
    prompts = ["a T-shirt", "a pullover", "a coat", "a dress"] * 6
    wishes = guide.wishes(gen.condition(len(prompts), prompts))
    first = gen.sample(prompts, len(prompts), redraws=0, **REDRAW)
    nudged = gen.sample(prompts, len(prompts), redraws=1, nudges=[3], **REDRAW)
    anew = gen.sample(prompts, len(prompts), redraws=1, nudges=[], **REDRAW)
    before = guide.named(first.images, wishes)
    missed = before < guide.named_at(wishes, gen.defaults.get("redraw_below", {}))
    assert missed.any() and (~missed).any()
    assert torch.equal(nudged.images[~missed], first.images[~missed])
    changed = missed & (guide.named(nudged.images, wishes) > before)
    assert changed.any()  # the nudge helped some images
    moved = (nudged.images[changed] - first.images[changed]).abs().mean()
    replaced = missed & (guide.named(anew.images, wishes) > before)
    assert moved < 0.7 * (anew.images[replaced] - first.images[replaced]).abs().mean()
    assert nudged.nfe > first.nfe
    assert torch.equal(nudged.images, gen.sample(prompts, len(prompts), redraws=1, nudges=[3], **REDRAW).images)
    gen.defaults["nudges"] = [3]  # the model's own nudges are the default
    assert torch.equal(gen.sample(prompts, len(prompts), redraws=1, **REDRAW).images, nudged.images)
    assert torch.equal(gen.sample(prompts, len(prompts), redraws=0, **REDRAW).images, first.images)


@pytest.mark.parametrize("nudges, match", [([0], "scales > 0"), ([-1.0], "scales > 0"), ("2", "list"),
                                           ([True], "scales > 0"), ([float("nan")], "scales > 0"),
                                           ([1, 2, 3], "3 scales but images are drawn again at most 2")])
def test_bad_nudges_are_refused(nudges, match):
    with pytest.raises(UsageError, match=match):
        Generator.load("fashion").sample("a coat", redraws=2, nudges=nudges, **KW)


def test_cli_generates_with_nudges_and_refuses_bad_ones(tmp_path, capsys):
    png = tmp_path / "coats.png"
    assert main(["generate", "a coat", "-n", "4", "--steps", "2", "--redraws", "2", "--nudges", "2,4",
                 "-o", str(png)]) == 0
    assert png.stat().st_size > 0
    plain = tmp_path / "plain.npy"  # "none" turns a model's own nudges off: every redraw from new noise
    assert main(["generate", "a coat", "-n", "4", "--steps", "2", "--redraws", "2", "--nudges", "none",
                 "-o", str(plain)]) == 0
    assert np.array_equal(np.load(plain), Generator.load("fashion").generate("a coat", n=4, steps=2, redraws=2,
                                                                            nudges=[]))
    for bad in ("0", "2,x", ""):
        with pytest.raises(SystemExit) as stop:
            main(["generate", "a coat", "--nudges", bad, "-o", str(tmp_path / "x.png")])
        assert stop.value.code != 0 and "scales > 0" in capsys.readouterr().err
    assert main(["generate", "a coat", "--redraws", "1", "--nudges", "2,4", "-o", str(tmp_path / "x.png")]) != 0
    assert "2 scales but images are drawn again at most 1" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_evaluate_reports_the_nudges_it_sampled_with():
    from diffusio.cli.generative import format_report

    scores = {key: 0.0 for key in ("fd", "kid", "precision", "recall")}
    report = {"n": 5, "dataset": "fashion-mnist", "classifier_test_accuracy": 0.9, "model": scores, "real_floor": scores,
              "sampling": {"sampler": "dpmpp-2m", "steps": 2, "guidance": 1, "redraws": 5, "nudges": [2.0, 4.0]}}
    assert "nudged at 2,4" in format_report(report)
    report["sampling"]["redraws"] = 0  # nothing redrawn: nothing nudged
    assert "nudged" not in format_report(report)
