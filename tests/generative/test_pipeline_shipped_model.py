"""The shipped `fashion` model meets its bar, judged by the shipped classifier.

Bar (issue 2): with the default sampler, steps and guidance, >= 85% of samples show the requested
class for each of the ten class prompts, and >= 80% for paraphrases that appear in no training caption.
"""

import pytest

from diffusio.generative.conditioning.captions import FASHION_SYNONYMS, class_captions
from diffusio.generative.evaluation.classifier import load_classifier
from diffusio.generative.data.datasets import FASHION_CLASSES
from diffusio.generative.evaluation.evaluate import FASHION_PARAPHRASES, class_prompts, prompt_accuracy

# Free text that no training caption contains, and the garment it must produce.
PARAPHRASES = {
    "running shoes": "Sneaker",
    "a handbag": "Bag",
    "winter coat": "Coat",
    "jeans": "Trouser",
    "a leather ankle boot": "Ankle boot",
    "an evening dress": "Dress",
    "a cosy knit sweater": "Pullover",
    "beach sandals": "Sandal",
    "a plain white tee": "T-shirt/top",
    "a formal shirt with buttons": "Shirt",
}
PER_PROMPT = 32


@pytest.fixture(scope="module")
def classifier():
    return load_classifier("fashion-mnist")


def test_paraphrases_are_not_training_captions():
    captions = {c for name in FASHION_CLASSES for c in class_captions(name, FASHION_SYNONYMS)}
    assert not captions & set(PARAPHRASES)
    assert PARAPHRASES == FASHION_PARAPHRASES  # what `diffusio evaluate` reports


# Issue 18's bar, with room for 32 samples a prompt: every class prompt but the shirt >= 97% (here
# 90%), the shirt within 5 points of the classifier on real shirts (about 70%; here 60%), the
# paraphrases >= 95% on average (here 90%).
SHIRTS = ("a photo of a shirt", "a formal shirt with buttons")


@pytest.mark.slow
def test_class_prompts(shipped, classifier):
    acc = prompt_accuracy(shipped, classifier, class_prompts(FASHION_CLASSES), PER_PROMPT, seed=0)
    print(acc)
    assert min(v for p, v in acc.items() if p not in SHIRTS) >= 0.90, acc
    assert acc["a photo of a shirt"] >= 0.60, acc


@pytest.mark.slow
def test_paraphrases(shipped, classifier):
    acc = prompt_accuracy(shipped, classifier, PARAPHRASES, PER_PROMPT, seed=1)
    print(acc)
    assert sum(acc.values()) / len(acc) >= 0.90 and min(acc.values()) >= 0.60, acc


@pytest.mark.parametrize("steps", [1, 4])
def test_distilled_student_keeps_the_bar(classifier, steps):
    """fashion-fast (issue 7): the same class-prompt bar in 1 and 4 network calls (with its default
    redraws; 64 per prompt: at 16 one unlucky draw decides), and no guidance pass."""
    from diffusio.generative import Generator

    student = Generator.load("fashion-fast")
    acc = prompt_accuracy(student, classifier, class_prompts(FASHION_CLASSES), 64, seed=0, steps=steps)
    assert student.sample("a bag", n=1, steps=steps, redraws=0).nfe == steps
    assert min(acc.values()) >= 0.85, acc


@pytest.mark.slow
def test_attribute_model_follows_the_wishes(classifier):
    """fashion-attr (issue 5): every feature follows the requested rank image by image (docs/editing.md,
    the wish adapter on `fashion`, shipped 2026-12-07: Spearman 0.97 / 0.91 / 0.91 on 400 images each);
    the requested class survives every wish (99.0% or more there, the prompt held under wishes)."""
    from diffusio.generative import Generator
    from diffusio.generative.conditioning.attributes import attribute_control

    gen = Generator.load("fashion-attr")
    # without the redraws (which read the finished images; not what is tested here): half the time in CI
    report = attribute_control(gen, classifier, per_cell=2, values=(0.1, 0.5, 0.9), seed=0, redraws=0)
    for name in ("brightness", "width", "height"):  # 60 images each here, so a margin below 0.8
        assert report[name]["spearman"] >= 0.7, report[name]
    assert min(r["class_accuracy"] for r in report.values()) >= 0.9, report


def test_attribute_model_is_fashion_with_a_wish_adapter():
    """fashion-attr (issue 18, since 2026-12-07): `fashion`'s network, frozen, with a wish adapter; sampled
    with fashion's recipe, so an image without wishes is fashion's image to the bit (every FD, recall and
    prompt score of fashion holds for it), and a wish changes it."""
    import torch

    from diffusio.generative import Generator

    attr, flagship = Generator.load("fashion-attr"), Generator.load("fashion")
    ours, parent = attr.model.denoiser.net.state_dict(), flagship.model.denoiser.net.state_dict()
    assert all(torch.equal(ours[k], parent[k]) for k in parent if k != "cond_embed.0.weight")
    assert attr.model.config["training"]["attributes_only"] and attr.model.config["net"]["wish_dims"] == 6
    kw = dict(n=2, steps=4, seed=0)
    plain = flagship.sample("a coat", **kw).images
    assert torch.equal(attr.sample("a coat", **kw).images, plain)
    assert not torch.equal(attr.sample("a coat", attrs={"width": 0.9}, **kw).images, plain)


def test_the_models_guidance_interval_is_the_default_and_all_overrides_it():
    """The config's sampling.guidance_interval applies unless the caller says otherwise."""
    import torch

    from diffusio.generative import Generator

    gen = Generator.load("fashion")
    kw = dict(n=2, steps=4, seed=0, guidance=5.0)
    everywhere = gen.sample("a bag", guidance_interval=(0, float("inf")), **kw)
    explicit = gen.sample("a bag", guidance_interval=(0.3, 5.0), **kw)
    gen.defaults["guidance_interval"] = [0.3, 5.0]
    default = gen.sample("a bag", **kw)
    assert torch.equal(default.images, explicit.images)
    assert not torch.equal(explicit.images, everywhere.images)
    assert torch.equal(gen.sample("a bag", guidance_interval=(0, float("inf")), **kw).images, everywhere.images)


def test_autoguidance_interval_guides_only_there_and_costs_one_pass_elsewhere():
    """autoguidance_interval=(lo, hi) autoguides where lo < sigma <= hi and runs the model alone
    elsewhere (the guide never called); the model's own sampling.autoguidance_interval is the
    default, and (0, inf) autoguides everywhere as without one."""
    import torch

    from diffusio.errors import UsageError
    from diffusio.generative import Generator

    gen = Generator.load("fashion")
    kw = dict(n=2, steps=4, seed=0, guidance=1.0, autoguidance=2.0, redraws=0)
    gen.defaults.pop("autoguidance_interval", None)
    everywhere = gen.sample("a bag", **kw).images
    assert torch.equal(gen.sample("a bag", autoguidance_interval=(0, float("inf")), **kw).images, everywhere)
    calls = []
    guide = gen._autoguide(2.0, None)[0]
    guide.register_forward_hook(lambda *_: calls.append(1))
    below_one = gen.sample("a bag", autoguidance_interval=(0, 1.0), **kw).images
    assert not torch.equal(below_one, everywhere) and 0 < len(calls) < 4  # only the steps under sigma 1
    calls.clear()
    none_inside = gen.sample("a bag", autoguidance_interval=(1000, 2000), **kw).images
    assert not calls and torch.equal(none_inside, gen.sample("a bag", **{**kw, "autoguidance": 1.0}).images)
    gen.defaults["autoguidance_interval"] = [0, 1.0]
    assert torch.equal(gen.sample("a bag", **kw).images, below_one)
    with pytest.raises(UsageError, match="autoguidance_interval must satisfy 0 <= lo < hi"):
        gen.sample("a bag", autoguidance_interval=(1.0, 0.5), **kw)


REDRAWS = 5  # fashion's default: images its class guide's check does not name are drawn again, up to 5 times
# the judge's accuracy on the 10,000 real test images of each class (docs/benchmarks.md, issue 18)
REAL_ACCURACY = {"T-shirt/top": 0.86, "Trouser": 0.978, "Pullover": 0.858, "Dress": 0.893, "Coat": 0.864,
                 "Sandal": 0.977, "Shirt": 0.701, "Sneaker": 0.969, "Bag": 0.983, "Ankle boot": 0.965}


def test_fashion_diverse_guides_in_an_interval_by_default():
    from diffusio.generative import Generator

    gen = Generator.load("fashion-diverse")
    assert gen.defaults["guidance"] == 2.75 and gen.defaults["guidance_interval"] == [0.3, 5.0]
    # the GPU continuation (21,643 steps in all): 6,267 steps at batch 256 from the 15,376-step `fashion`,
    # its last fifth annealed (issue 18, docs/benchmarks.md)
    training = gen.model.config["training"]
    assert training["init"] == "fashion" and training["steps_done"] == 6267 and training["cooldown"] == 0.2


def test_fashion_is_the_fashion_diverse_network_without_classifier_free_guidance():
    """Issue 18: `fashion` ships the fashion-diverse network sampled with autoguidance alone and
    redraws, so that every class prompt stays at 97% or more; fashion-diverse guides at 2.75."""
    import torch

    from diffusio.generative import Generator

    flagship, diverse = Generator.load("fashion"), Generator.load("fashion-diverse")
    assert flagship.defaults["guidance"] == 1.0 and flagship.defaults["redraws"] == REDRAWS
    ours, theirs = flagship.model.denoiser.state_dict(), diverse.model.denoiser.state_dict()
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_fashion_autoguides_from_its_own_first_steps_by_default():
    """Issue 18: fashion samples with autoguidance 2 away from fashion-guide, the same network after
    its first 5,376 training steps; autoguidance=1 gives the plain conditional samples."""
    import torch

    from diffusio.generative import Generator

    flagship, guide = Generator.load("fashion"), Generator.load("fashion-guide")
    assert flagship.defaults["autoguidance"] == 2.0 and flagship.defaults["guide"] == "fashion-guide"
    # only at sigma <= 4: FD 0.479 against 0.640 autoguided everywhere (docs/benchmarks.md)
    assert flagship.defaults["autoguidance_interval"] == [0.0, 4.0]
    assert guide.model.config["training"]["steps_done"] == 5376
    assert flagship.model.config["net"] == guide.model.config["net"]
    kw = dict(n=2, steps=4, seed=0)
    default = flagship.sample("a bag", **kw).images
    assert torch.equal(default, flagship.sample("a bag", autoguidance=2.0, guide="fashion-guide", guidance=1.0,
                                                autoguidance_interval=(0, 4), redraws=REDRAWS, **kw).images)
    assert not torch.equal(default, flagship.sample("a bag", autoguidance=1.0, **kw).images)


@pytest.mark.slow
def test_fashion_diverse_names_every_class_as_often_as_real_images_are(classifier):
    """Each class prompt is named at least as often as the judge names real images of the class
    (less 10 points for 32 samples).  Its paraphrases are the flagship's test: the same network,
    which reads the text the same way (docs/benchmarks.md measures both)."""
    from diffusio.generative import Generator

    gen = Generator.load("fashion-diverse")
    prompts = class_prompts(FASHION_CLASSES)
    acc = prompt_accuracy(gen, classifier, prompts, PER_PROMPT, seed=0)
    assert all(acc[p] >= REAL_ACCURACY[name] - 0.10 for p, name in prompts.items()), acc


def test_bf16_sampling_is_opt_in_and_draws_nearly_the_same_images(classifier):
    """bf16='on' runs the network's matrix products in bfloat16: other pixels than float32 for the
    same seed, but the same garments; the default (off) is float32, bit for bit."""
    import torch

    from diffusio.errors import UsageError
    from diffusio.generative import Generator

    gen = Generator.load("fashion")
    kw = dict(n=8, steps=8, seed=3)
    plain = gen.sample("a sneaker", **kw).images
    assert torch.equal(gen.sample("a sneaker", bf16="off", **kw).images, plain)
    fast = gen.sample("a sneaker", bf16="on", **kw).images
    assert not torch.equal(fast, plain) and fast.dtype == torch.float32
    assert (fast - plain).abs().mean() < 0.02  # pixels in [-1, 1]; 0.008 measured
    sneaker = classifier.class_names.index("Sneaker")
    assert (classifier.predict(fast.numpy()) == sneaker).mean() >= 7 / 8
    with pytest.raises(UsageError, match="bf16 must be auto, on or off"):
        gen.sample("a sneaker", bf16="fast", **kw)


def test_fashion_ships_a_class_guide_that_reads_prompts_and_sees_classes_through_noise():
    """The class guide (docs/generative.md, "Guidance") ships with `fashion`, off by default: its
    reader names the class of every held-out paraphrase, and its classifier names most real test
    images through noise; its check classifier names more of the clean ones than the guide does."""
    import numpy as np
    import torch

    from diffusio.generative import Generator
    from diffusio.generative.conditioning.class_guide import load_class_guide
    from diffusio.generative.data.datasets import load_dataset

    gen = Generator.load("fashion")
    assert gen.defaults["classifier_guidance"] == 0.0
    guide = load_class_guide(gen.model.path, gen.model.config)
    wishes = guide.wishes(gen.condition(len(PARAPHRASES), list(PARAPHRASES)))
    assert [guide.class_names[i] for i in wishes.argmax(1)] == list(PARAPHRASES.values())
    test = load_dataset("fashion-mnist", "test")
    x, truth = torch.from_numpy(test.images[:500]), test.labels[:500]
    noisy = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        named = guide.net(noisy, torch.full((500,), 0.5)).argmax(1).numpy()
    assert np.mean(named == truth) >= 0.80
    read = guide.named(x, torch.eye(10)[truth]).numpy()  # the check's probability of the true class
    with torch.no_grad():
        plain = torch.softmax(guide.net(x, torch.full((500,), 0.02)), 1)[np.arange(500), truth].numpy()
    assert np.mean(read >= 0.5) >= 0.90 and np.mean(read >= 0.5) > np.mean(plain >= 0.5)


@pytest.mark.slow
def test_redraws_then_class_guidance_make_the_ambiguous_garments_their_class_more_often(classifier):
    """fashion's default (autoguidance alone, then redraws): the T-shirt, pullover, coat and shirt
    prompts, which autoguidance alone names as ambiguously as real images, are named far more often;
    the shirt, redrawn only under its own bar, at least as often and above its goal (docs/benchmarks.md,
    "Redraws" and "A bar per class").  Classifier guidance on top names them more often still.
    (One test, so that the default's draws are made once: CI time.)"""
    from diffusio.generative import Generator

    gen = Generator.load("fashion")
    prompts = {p: c for p, c in class_prompts(FASHION_CLASSES).items()
               if c in ("T-shirt/top", "Pullover", "Coat", "Shirt")}
    plain = prompt_accuracy(gen, classifier, prompts, 24, seed=0, redraws=0)
    redrawn = prompt_accuracy(gen, classifier, prompts, 24, seed=0)
    print(plain, redrawn)
    named = lambda acc: round(sum(v for p, v in acc.items() if prompts[p] != "Shirt") * 24)  # noqa: E731
    assert named(redrawn) >= max(named(plain) + 4, 66), (plain, redrawn)  # of 72
    # the shirt has its own, lower bar (0.3): held to the shirt goal, 5 points under real shirts (70.1%)
    shirt = next(p for p, c in prompts.items() if c == "Shirt")
    assert redrawn[shirt] >= max(plain[shirt], 0.651), (plain, redrawn)
    steered = prompt_accuracy(gen, classifier, prompts, 24, seed=0, classifier_guidance=3.0)
    print(steered)
    assert sum(steered.values()) * 24 >= sum(redrawn.values()) * 24 + 3, (redrawn, steered)
