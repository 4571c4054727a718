"""Control by image features: measuring, ranking, conditioning, and fine-tuning from a parent model."""

import numpy as np
import pytest
import torch

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.generative import Generator
from diffusio.generative.conditioning.attributes import (MASS, Attributes, class_quantiles, measure, parse_wishes,
                                            to_rank)
from diffusio.generative.training.trainer import TrainConfig, Trainer, train


def rectangle(top, bottom, left, right, value=200, size=28):
    img = np.zeros((1, size, size), np.uint8)
    img[0, top:bottom, left:right] = value
    return img


def test_features_of_a_rectangle_have_closed_forms():
    f = measure(rectangle(4, 24, 10, 18))
    central = MASS[1] - MASS[0]  # the extent holds the central 95% of the mass
    assert f["brightness"][0] == pytest.approx(200 / 255)
    assert f["width"][0] == pytest.approx(central * 8 / 28)
    assert f["height"][0] == pytest.approx(central * 20 / 28)
    # float images in [-1, 1] (the training format) measure the same
    as_float = rectangle(4, 24, 10, 18)[:, None].astype(np.float32) / 127.5 - 1
    assert measure(as_float)["width"][0] == pytest.approx(f["width"][0])


def test_wider_and_brighter_objects_measure_larger():
    narrow, wide = measure(rectangle(2, 26, 12, 16))["width"], measure(rectangle(2, 26, 4, 24))["width"]
    dim, bright = measure(rectangle(2, 26, 8, 20, 90))["brightness"], measure(rectangle(2, 26, 8, 20, 250))["brightness"]
    assert wide > narrow and bright > dim


def test_ranks_are_uniform_within_each_class():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 500)
    values = np.concatenate([rng.normal(0, 1, 500), rng.normal(10, 3, 500)])
    table = class_quantiles(values, labels, 2)
    ranks = to_rank(values, labels, table)
    for c in (0, 1):  # each class spans [0, 1] evenly, whatever its own scale
        assert np.histogram(ranks[labels == c], bins=4, range=(0, 1))[0] == pytest.approx([125] * 4, abs=6)
    ties = to_rank(np.zeros(3), np.zeros(3, int), np.zeros((1, 101)))
    assert ties == pytest.approx([0.5] * 3)  # a value every image shares sits in the middle


def test_condition_layout_and_bad_wishes():
    attrs = Attributes(["brightness", "width"], {"brightness": np.zeros((2, 101)), "width": np.zeros((2, 101))})
    block = attrs.vectors({"width": 0.9}, 3)
    assert block.shape == (3, 4)
    assert block[0].tolist() == pytest.approx([0.0, 0.8, 0.0, 1.0])  # values 2r-1, then "given" flags
    with pytest.raises(UsageError, match="unknown attribute 'height'"):
        attrs.vectors({"height": 0.5}, 1)
    with pytest.raises(UsageError, match="outside \\[0, 1\\]"):
        attrs.vectors({"width": 1.5}, 1)
    assert parse_wishes(["brightness=0.2", "width=1"]) == {"brightness": 0.2, "width": 1.0}
    for bad, message in ((["brightness"], "NAME=VALUE"), (["width=wide"], "needs a number"),
                         (["width=0.1", "width=0.2"], "given twice")):
        with pytest.raises(UsageError, match=message):
            parse_wishes(bad)


@pytest.fixture(scope="module")
def parent_and_child(tmp_path_factory):
    root = tmp_path_factory.mktemp("attr")
    common = dict(data="digits", batch_size=8, base=8, mults=(1, 2), every=0, quiet=True, threads=1)
    parent = train(TrainConfig(out=str(root / "parent"), steps=3, **common))
    child = train(TrainConfig(out=str(root / "child"), steps=4, init=str(parent),
                              attributes=("brightness", "width"), lr=1e-3, **common))
    return parent, child


def test_fine_tune_starts_exactly_at_the_parent(parent_and_child, tmp_path):
    parent_dir, _ = parent_and_child
    trainer = Trainer(TrainConfig(data="digits", out=str(tmp_path / "fresh"), steps=1, every=0, quiet=True,
                                  init=str(parent_dir), attributes=("height",)))
    parent = Generator.load(parent_dir).model.denoiser
    x, sigma = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.full((4,), 1.5)
    text = torch.randn(4, parent.net.config["cond_dim"])
    padded = torch.cat([text, torch.zeros(4, 2)], 1)  # no attribute wish: zeros
    with torch.no_grad():
        assert torch.equal(trainer.denoiser(x, sigma, padded), parent(x, sigma, text))
    assert trainer.config["net"]["cond_dim"] == parent.net.config["cond_dim"] + 2


def test_fine_tune_keeps_the_parents_autoguidance_and_no_class_guide(parent_and_child, tmp_path):
    import json
    import shutil

    parent = tmp_path / "parent"
    shutil.copytree(parent_and_child[0], parent)
    config = json.loads((parent / "config.json").read_text())
    config["sampling"].update(autoguidance=1.5, guide=str(parent), classifier_guidance=2.0, redraws=3,
                              redraw_below={"c0": 0.3})
    (parent / "config.json").write_text(json.dumps(config))
    common = dict(data="digits", steps=1, every=0, quiet=True, init=str(parent))
    same = Trainer(TrainConfig(out=str(tmp_path / "same"), **common))
    assert same.config["sampling"]["autoguidance"] == 1.5 and same.config["sampling"]["guide"] == str(parent)
    # the parent's class guide stays in its folder, so the child does not ask for one
    assert not {"classifier_guidance", "redraws", "redraw_below"} & set(same.config["sampling"])
    wishes = Trainer(TrainConfig(out=str(tmp_path / "wishes"), attributes=("height",), **common))
    # the parent's guide has no attribute inputs: it guides the child reading the prompt part only
    assert wishes.config["sampling"]["autoguidance"] == 1.5 and wishes.config["sampling"]["guide"] == str(parent)
    assert wishes.config["sampling"]["steps"] == config["sampling"]["steps"]


def test_attribute_model_generates_with_and_without_wishes(parent_and_child):
    _, child_dir = parent_and_child
    gen = Generator.load(child_dir)
    assert gen.model.attributes.names == ["brightness", "width"]
    cond = gen.condition(2, prompt="a seven", attrs={"brightness": 0.25})
    assert cond.shape == (2, 384 + 4)
    assert cond[0, 384:].tolist() == pytest.approx([-0.5, 0.0, 1.0, 0.0])
    assert gen.condition(2, label=7)[:, 384:].abs().sum() == 0  # class rows carry "no wish"
    for kw in ({"prompt": "a seven"}, {"label": 3}, {}):
        assert gen.generate(n=2, steps=3, seed=0, attrs={"width": 0.9}, **kw).shape == (2, 8, 8)
    assert gen.generate("a seven", n=2, steps=3, seed=0).shape == (2, 8, 8)
    # attribute guidance: by default the prompt's scale (plain guidance); another scale changes the images
    wish = {"prompt": "a seven", "n": 2, "steps": 3, "seed": 0, "attrs": {"width": 0.9}}
    plain = gen.sample(**wish).images  # float: this barely trained child moves its attribute weights only a little
    assert torch.equal(gen.sample(**wish, attr_guidance=gen.defaults["guidance"]).images, plain)
    assert not torch.equal(gen.sample(**wish, attr_guidance=20.0).images, plain)
    # the prompt held under wishes: other images with a wish, the same without one (and from the config)
    held = gen.sample(**wish, attr_prompt_guidance=20.0).images
    assert not torch.equal(held, plain)
    free = {k: v for k, v in wish.items() if k != "attrs"}
    assert torch.equal(gen.sample(**free, attr_prompt_guidance=20.0).images, gen.sample(**free).images)
    gen.defaults["attr_prompt_guidance"] = 20.0
    assert torch.equal(gen.sample(**wish).images, held)
    with pytest.raises(UsageError, match="attr-guidance needs a model trained with --attributes"):
        Generator.load(parent_and_child[0]).generate("a seven", n=1, steps=2, attr_guidance=3.0)


def test_attribute_sweep_reports_every_attribute(parent_and_child):
    from diffusio.generative.conditioning.attributes import attribute_control
    from diffusio.generative.evaluation.classifier import load_classifier

    gen = Generator.load(parent_and_child[1])
    report = attribute_control(gen, load_classifier("digits"), per_cell=1, values=(0.2, 0.8), steps=2)
    assert set(report) == {"brightness", "width"}
    assert report["width"]["n"] == 20 and len(report["width"]["mean_measured"]) == 2
    assert set(attribute_control(gen, load_classifier("digits"), 1, (0.5,), only=["width"], steps=2)) == {"width"}


def test_evaluate_runs_the_attribute_sweep(parent_and_child):
    # evaluate hands all its sampling options to the sweep: one the sweep did not take (nudges) crashed it
    from diffusio.generative.evaluation.evaluate import evaluate

    report = evaluate(str(parent_and_child[1]), n=5, per_prompt=0, attr_per_cell=1, steps=2)
    assert set(report["attributes"]) == {"brightness", "width"}


def test_cli_attr_flags_and_errors(parent_and_child, tmp_path, capsys):
    parent_dir, child_dir = parent_and_child
    out = tmp_path / "a.npy"
    assert main(["generate", "a seven", "--model", str(child_dir), "-n", "2", "--steps", "3",
                 "--attr", "brightness=0.1", "--attr", "width=0.9", "--attr-guidance", "12",
                 "--attr-prompt-guidance", "5", "-o", str(out)]) == 0
    assert np.load(out).shape == (2, 8, 8)
    for argv, message in (
            (["--model", str(parent_dir), "--attr", "width=0.5"], "takes no attributes"),
            (["--model", str(child_dir), "--attr", "height=0.5"], "unknown attribute 'height'"),
            (["--model", str(child_dir), "--attr", "width=2"], "outside [0, 1]"),
            (["--model", str(child_dir), "--attr", "width"], "NAME=VALUE"),
            (["--model", str(parent_dir), "--attr-guidance", "9"], "attr-guidance needs a model"),
            (["--model", str(parent_dir), "--attr-prompt-guidance", "9"], "attr-prompt-guidance needs a model")):
        capsys.readouterr()
        assert main(["generate", "x", "-n", "1", "--steps", "2", "-o", str(tmp_path / "b.npy"), *argv]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "b.npy").exists()


def test_attributes_only_keeps_the_parent_and_samples_as_it_without_wishes(parent_and_child, tmp_path):
    parent_dir, _ = parent_and_child
    out = tmp_path / "adapter"
    assert main(["train", "--data", "digits", "--out", str(out), "--steps", "3", "--batch-size", "8", "--lr", "0.01",
                 "--every", "0", "--threads", "1", "--quiet", "--init", str(parent_dir), "--attributes", "width",
                 "--attributes-only"]) == 0
    parent, child = Generator.load(parent_dir), Generator.load(out)
    p, c = parent.model.denoiser.net.state_dict(), child.model.denoiser.net.state_dict()
    key = "cond_embed.0.weight"
    assert all(torch.equal(p[k], c[k]) for k in p if k != key)
    text = p[key].shape[1]  # the prompt's columns stay as they were, the attribute columns at zero
    assert torch.equal(c[key][:, :text], p[key]) and not c[key][:, text:].any()
    adapter = [k for k in c if k not in p]  # the wish adapter: its embedding and a scale and shift per block
    assert adapter and all(k.startswith("wish_embed.") or ".wish_film." in k for k in adapter)
    assert all(c[k].abs().max() > 0 for k in adapter if k.endswith("wish_film.weight"))  # it learned
    assert child.model.config["net"]["wish_dims"] == 2  # one attribute: its rank and its "given" flag
    kw = dict(prompt="a seven", n=2, steps=3, seed=0)
    assert torch.equal(child.sample(**kw).images, parent.sample(**kw).images)
    assert not torch.equal(child.sample(**kw, attrs={"width": 0.9}).images, parent.sample(**kw).images)
    # in one batch, a row without wishes is the parent's row to the bit and a row with one is not
    x, prompt = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.randn(2, text)
    wishes = torch.tensor([[0.0, 0.0], [0.8, 1.0]])
    with torch.no_grad():
        mixed = child.model.denoiser.net(x, torch.zeros(2), torch.cat([prompt, wishes], 1))
        alone = parent.model.denoiser.net(x, torch.zeros(2), prompt)
    assert torch.equal(mixed[0], alone[0]) and not torch.equal(mixed[1], alone[1])
    with pytest.raises(UsageError, match="trained with --attributes-only; resume it with the same switch"):
        Trainer(TrainConfig(data="digits", out=str(out), steps=4, batch_size=8, every=0, quiet=True,
                            init=str(parent_dir), attributes=("width",)), resume=True)


def test_bad_fine_tunes_leave_nothing_behind(parent_and_child, tmp_path, capsys):
    parent_dir, child_dir = parent_and_child
    for extra, message in ((["--attributes", "width", "--attributes-only"], "give it --init MODEL"),
                           (["--init", str(parent_dir), "--attributes-only"], "give it --init MODEL"),
                           (["--attributes", "colour"], "unknown attribute 'colour'"),
                           (["--init", str(child_dir), "--attributes", "width"], f"trained from, --init {parent_dir}"),
                           (["--init", str(parent_dir), "--cond", "class", "--attributes", "width"], "does not match"),
                           (["--init", "no-such-model"], "no model")):
        out = tmp_path / "run"
        assert main(["train", "--data", "digits", "--out", str(out), "--steps", "1", "--quiet", *extra]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists()
