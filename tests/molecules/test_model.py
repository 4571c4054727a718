"""A tiny molecule model trains in seconds, writes valid molecules, follows the seed, resumes exactly."""

import pandas as pd
import pytest
import torch

from diffusio.errors import UsageError
from diffusio.molecules import MoleculeDiffusion, load_moses

TINY = dict(width=32, depth=1, heads=2, batch_size=32, sample_steps=6)


@pytest.fixture(scope="module")
def smiles():
    return load_moses("test", limit=400, seed=0)


@pytest.fixture(scope="module")
def tiny(smiles):
    return MoleculeDiffusion(steps=40, seed=0, **TINY).fit(smiles)


def test_every_generated_molecule_is_valid_and_the_seed_decides(tiny):
    from rdkit import Chem

    table = tiny.sample(20, seed=3)
    assert all(Chem.MolFromSmiles(s) is not None for s in table.smiles)
    assert table.qed.between(0, 1).all()
    pd.testing.assert_frame_equal(table, tiny.sample(20, seed=3))
    assert not table.equals(tiny.sample(20, seed=4))


def test_bf16_sampling_is_valid_and_repeatable(tiny):
    from rdkit import Chem

    fast = tiny.sample(40, seed=3, bf16="on")
    assert all(Chem.MolFromSmiles(s) is not None for s in fast.smiles)
    pd.testing.assert_frame_equal(fast, tiny.sample(40, seed=3, bf16="on"))
    with pytest.raises(UsageError, match="bf16 must be auto, on or off"):
        tiny.sample(5, bf16="fast")
    with pytest.raises(UsageError, match="bf16 must be"):
        MoleculeDiffusion(bf16=True)


def test_conditions(tiny):
    table = tiny.sample(10, seed=0, condition="qed>0.5")
    assert len(table) == 10
    with pytest.raises(UsageError, match="unknown property 'toxicity'"):
        tiny.sample(5, condition="toxicity>0.5")
    with pytest.raises(UsageError, match="no training molecule has qed"):
        tiny.sample(5, condition="qed>1.5")
    with pytest.raises(UsageError, match="empty range"):
        tiny.sample(5, condition="300<weight<200")


def test_save_load_and_resume_equal_an_uninterrupted_run(smiles, tmp_path):
    whole = MoleculeDiffusion(steps=12, seed=1, **TINY).fit(smiles)
    MoleculeDiffusion(steps=5, every=5, seed=1, **TINY).fit(smiles, out=tmp_path)
    resumed = MoleculeDiffusion(steps=12, every=5, seed=1, **TINY).fit(smiles, out=tmp_path, resume=True)
    assert resumed.run.step == 12
    pd.testing.assert_frame_equal(resumed.sample(8, seed=0), whole.sample(8, seed=0))
    pd.testing.assert_frame_equal(MoleculeDiffusion.load(tmp_path).sample(8, seed=0), whole.sample(8, seed=0))


def test_init_continues_a_trained_model_and_resumes_only_the_way_it_started(smiles, tiny, tmp_path):
    tiny.save(tmp_path / "parent")
    zero = MoleculeDiffusion(steps=1, lr=1e-12, seed=1, batch_size=8).fit(smiles[:50], init=tmp_path / "parent")
    assert (zero.width, zero.depth, zero.length) == (tiny.width, tiny.depth, tiny.length)  # the parent's, not the defaults
    assert zero.vocab.tokens == tiny.vocab.tokens and zero.property_bins.quantiles.tolist() == tiny.property_bins.quantiles.tolist()
    assert zero._config()["init"]["steps"] == tiny.run.step
    pd.testing.assert_frame_equal(zero.sample(8, seed=0, steps=6), tiny.sample(8, seed=0, steps=6))  # no learning: the parent
    whole = MoleculeDiffusion(steps=8, seed=1, **TINY).fit(smiles, init=tmp_path / "parent")
    assert not all(torch.equal(a, b) for a, b in zip(whole.net.parameters(), tiny.ema.parameters()))  # it learnt
    MoleculeDiffusion(steps=4, every=4, seed=1, **TINY).fit(smiles, out=tmp_path / "run", init=tmp_path / "parent")
    with pytest.raises(UsageError, match="started from .*parent, but no init was given"):
        MoleculeDiffusion(steps=8, every=4, seed=1, **TINY).fit(smiles, out=tmp_path / "run", resume=True)
    whole.save(tmp_path / "parent")  # the parent's name now holds another model (as when a run's checkpoint ships)
    resumed = MoleculeDiffusion(steps=8, every=4, seed=1, **TINY).fit(smiles, out=tmp_path / "run", resume=True,
                                                                       init=tmp_path / "parent")
    assert all(torch.equal(a, b) for a, b in zip(resumed.net.parameters(), whole.net.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(resumed.ema.parameters(), whole.ema.parameters()))
    assert MoleculeDiffusion.load(tmp_path / "run")._config()["init"] == {
        "model": str(tmp_path / "parent"), "steps": tiny.run.step, "wall_seconds": round(tiny.run.wall, 1)}


def test_cooldown_keeps_the_rate_until_its_fraction_and_resumes_exactly(smiles, tmp_path):
    """A cool-down over the last half of 12 steps leaves the first 6 at the constant rate: 6 plain steps
    resumed to 12 with the cool-down equal an uninterrupted cool-down run, and differ from no cool-down."""
    cooled = MoleculeDiffusion(steps=12, cooldown=0.5, seed=1, **TINY).fit(smiles)
    plain = MoleculeDiffusion(steps=12, seed=1, **TINY).fit(smiles)
    MoleculeDiffusion(steps=6, every=6, seed=1, **TINY).fit(smiles, out=tmp_path)
    resumed = MoleculeDiffusion(steps=12, cooldown=0.5, every=6, seed=1, **TINY).fit(smiles, out=tmp_path, resume=True)
    assert all(torch.equal(a, b) for a, b in zip(resumed.ema.parameters(), cooled.ema.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(plain.ema.parameters(), cooled.ema.parameters()))


@pytest.mark.parametrize("kwargs, message", [({"width": 30, "heads": 4}, "multiple of heads"),
                                             ({"guidance": -1}, "guidance must be"), ({"steps": 0}, "steps must"),
                                             ({"cooldown": 1.5}, "cooldown must be a fraction")])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(UsageError, match=message):
        MoleculeDiffusion(**kwargs)


def test_unconditional_sampling_feeds_the_no_condition_bins_it_was_trained_with(tiny):
    """Training drops conditions to bin 0; sampling without a condition must feed bin 0 too (it once
    fed nothing, which the network never saw)."""
    seen = []
    forward = tiny.ema.forward

    def spy(tokens, cond=None):
        seen.append(cond)
        return forward(tokens, cond)

    tiny.ema.forward = spy
    try:
        tiny.sample(4, seed=0)
    finally:
        del tiny.ema.forward
    assert seen and all(c is not None and not c.any() for c in seen)


def test_the_confident_sampler_reveals_the_surest_positions_first():
    """Position j allows j + 1 tokens, equally likely, so the network is surer the further left: with
    no noise the sampler reveals a prefix, as many positions per step as the random order expects."""
    from diffusio.molecules.sampling import confident_reveal_sampler

    length, mask = 6, 7
    seen = []

    def net(x, cond):
        seen.append(x != mask)
        allowed = torch.arange(8)[None, :] <= torch.arange(length)[:, None]   # (position, token)
        return torch.where(allowed, 0.0, -torch.inf).expand(len(x), length, 8).clone()

    x = confident_reveal_sampler(net, 2, length, mask, 3, torch.Generator().manual_seed(0), noise=0.0)
    assert (x != mask).all() and (x <= torch.arange(length)).all()
    assert [s.sum(1).tolist() for s in seen] == [[0, 0], [2, 2], [4, 4]]
    assert all((s == (torch.arange(length) < s.sum(1, keepdim=True))).all() for s in seen)
    seen.clear()
    confident_reveal_sampler(net, 2, length, mask, 3, torch.Generator().manual_seed(0), noise=5.0)
    assert [s.sum(1).tolist() for s in seen] == [[0, 0], [2, 2], [4, 4]]


def test_every_sampler_writes_valid_molecules_and_follows_the_seed(tiny):
    from rdkit import Chem

    drawn = {}
    for name in ("confident", "random", "remask"):
        drawn[name] = tiny.sample(20, seed=3, sampler=name)
        assert all(Chem.MolFromSmiles(s) is not None for s in drawn[name].smiles)
        pd.testing.assert_frame_equal(drawn[name], tiny.sample(20, seed=3, sampler=name))
    assert not drawn["confident"].equals(drawn["random"]) and not drawn["confident"].equals(drawn["remask"])
    with pytest.raises(UsageError, match="sampler must be one of confident, random, remask"):
        tiny.sample(5, sampler="greedy")
    with pytest.raises(UsageError, match="sampler must be"):
        MoleculeDiffusion(sampler="greedy")


def test_remasking_repairs_what_parallel_drawing_got_wrong():
    """Two positions that must hold the same token: alone, each is a coin toss; beside a written
    token, the network copies it.  Drawing both at once disagrees about half the time; the
    remasking sampler's correction round redraws the less sure one beside the other, so it agrees."""
    from diffusio.molecules.sampling import confident_reveal_sampler, remasking_sampler

    mask, calls = 2, []

    def net(x, cond):
        calls.append(1)
        logits = torch.zeros(len(x), 2, 3)
        for j in range(2):
            other = x[:, 1 - j]
            copy = other != mask
            logits[copy, j, :2] = -9.0
            logits[copy, j] = logits[copy, j].scatter(-1, other[copy, None], 0.0)
        return logits

    gen = torch.Generator().manual_seed(0)
    at_once = confident_reveal_sampler(net, 400, 2, mask, 1, gen)
    disagree = (at_once[:, 0] != at_once[:, 1]).float().mean()
    assert 0.4 < disagree < 0.6
    calls.clear()
    corrected = remasking_sampler(net, 400, 2, mask, 2, gen)   # one pass writing both, one correcting
    assert len(calls) == 2 and (corrected != mask).all()
    assert (corrected[:, 0] == corrected[:, 1]).all()
    assert 0.35 < (corrected[:, 0] == 0).float().mean() < 0.65   # still a fair coin which token


def test_load_takes_the_shipped_model_by_name_or_by_default_and_names_the_known_ones(tmp_path):
    shipped = MoleculeDiffusion.load()
    assert shipped._config() == MoleculeDiffusion.load("moses-small")._config()
    assert shipped.sample(4, seed=3).equals(MoleculeDiffusion.load("moses-small").sample(4, seed=3))
    with pytest.raises(UsageError, match="neither a run folder nor a shipped model .*moses-small"):
        MoleculeDiffusion.load("moses-large")
