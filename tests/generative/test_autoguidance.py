"""Autoguidance from the Python API and the CLI: the guide is a weaker version of the same model."""

import json
import shutil

import numpy as np
import pytest
import torch

from diffusio.cli.main import main
from diffusio.errors import UsageError
from diffusio.generative.checkpoint.models import resolve_model_dir
from diffusio.generative import Generator

KW = dict(n=3, steps=4, seed=0)


def test_a_guide_identical_to_the_model_changes_nothing_and_scale_one_is_off():
    """fashion-diverse is fashion's network: D_bad + w (D - D_bad) = D, to the bit."""
    gen = Generator.load("fashion")
    plain = gen.sample("a coat", autoguidance=1.0, **KW).images
    same = gen.sample("a coat", autoguidance=2.0, guide="fashion-diverse", **KW).images
    assert torch.equal(plain, same)
    assert torch.equal(gen.sample("a coat", autoguidance=1.0, guide="no-such-model", **KW).images, plain)  # never loaded


def test_a_weaker_guide_changes_the_samples_and_the_seed_still_decides():
    gen = Generator.load("fashion")
    plain = gen.sample("a coat", autoguidance=1.0, **KW).images
    guided = gen.sample("a coat", autoguidance=2.0, guide="fashion-guide", **KW).images
    assert not torch.equal(plain, guided)
    assert torch.equal(guided, gen.sample("a coat", autoguidance=2.0, guide="fashion-guide", **KW).images)


def test_an_attribute_model_takes_a_guide_with_the_same_attributes_or_none(tmp_path):
    """An earlier checkpoint of an attribute model's own run guides it; here the model itself, so
    the wishes reach both and the samples are the unguided ones, to the bit.  A guide with other
    attribute tables is refused; one without attributes (a parent's) reads the prompt part."""
    gen = Generator.load("fashion-attr")
    kw = dict(KW, attrs={"width": 0.9})
    plain = gen.sample("a coat", autoguidance=1.0, **kw).images
    assert torch.equal(gen.sample("a coat", autoguidance=2.0, guide="fashion-attr", **kw).images, plain)
    other = tmp_path / "other-tables"  # the same names read through other per-class tables
    shutil.copytree(resolve_model_dir("fashion-attr"), other)
    config = json.loads((other / "config.json").read_text())
    tables = config["conditioning"]["attributes"]["quantiles"]
    tables["width"] = (np.asarray(tables["width"]) * 0.5).tolist()
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="does not match this model.*brightness,width,height"):
        gen.sample("a coat", autoguidance=2.0, guide=str(other), **kw)
    tables["width"] = tables["width"][:3]  # other classes: another shape, refused the same way (not a numpy error)
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="does not match this model"):
        gen.sample("a coat", autoguidance=2.0, guide=str(other), **kw)
    # a guide without attribute inputs (a parent's) reads the prompt part: blind to the wishes, it
    # guides the model toward them too, and it is loaded, not refused
    blind = gen.sample("a coat", autoguidance=2.0, guide="fashion-guide", **kw).images
    assert blind.shape == plain.shape and not torch.equal(blind, plain)


@pytest.mark.parametrize("kwargs, message", [
    (dict(autoguidance=2.0, guide=""), "autoguidance needs a guide"),
    (dict(autoguidance=2.0, guide="fashion-attr"), "does not match this model"),
    (dict(autoguidance=-1.0, guide="fashion-guide"), "autoguidance must be"),
])
def test_bad_autoguidance_is_named(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Generator.load("fashion").sample("a coat", **KW, **kwargs)


def test_the_cli_takes_autoguidance_and_a_guide(tmp_path, capsys):
    out = tmp_path / "coats.npy"
    assert main(["generate", "a coat", "-n", "2", "--steps", "3", "--autoguidance", "2", "--guide", "fashion-guide",
                 "-o", str(out)]) == 0
    report = tmp_path / "r.json"
    assert main(["evaluate", "fashion", "-n", "6", "--steps", "2", "--per-prompt", "0", "--autoguidance", "1.5",
                 "--guide", "fashion-guide", "--json", str(report)]) == 0
    sampling = json.loads(report.read_text())["sampling"]
    assert sampling["autoguidance"] == 1.5 and sampling["guide"] == "fashion-guide"
    assert "autoguidance 1.5 from fashion-guide" in capsys.readouterr().out
    assert main(["generate", "a coat", "-n", "1", "--autoguidance", "2", "--guide", "fashion-attr",
                 "-o", str(tmp_path / "x.npy")]) == 2
    assert "does not match" in capsys.readouterr().err
