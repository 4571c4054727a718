"""The learning-rate schedule: warm-up, constant, and a linear cool-down that a stopped run reports."""

import math

import pytest

from diffusio.errors import UsageError
from diffusio.generative.training.schedule import learning_rate
from diffusio.generative.training.trainer import TrainConfig, Trainer

TINY = dict(data="digits", batch_size=8, base=8, mults=(1,), attn_levels=(), cond="class", every=0, quiet=True)


def test_warmup_then_constant_without_cooldown():
    rates = [learning_rate(s, 1e-3, warmup=4, total=20) for s in range(20)]
    assert rates[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert rates[4:] == [1e-3] * 16


def test_cooldown_falls_linearly_to_zero_over_its_fraction():
    total = 100
    rates = [learning_rate(s, 1e-3, warmup=1, total=total, cooldown=0.25) for s in range(total)]
    assert rates[:75] == [1e-3] * 75  # constant until the last quarter
    decay = rates[75:]
    steps = [a - b for a, b in zip(decay, decay[1:])]
    assert steps == pytest.approx([1e-3 / 25] * 24)  # a straight line ...
    assert decay[-1] == pytest.approx(1e-3 / 25)  # ... whose next point would be zero
    whole = [learning_rate(s, 1e-3, warmup=1, total=10, cooldown=1.0) for s in range(10)]
    assert whole[0] == pytest.approx(1e-3) and whole[-1] == pytest.approx(1e-4)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_cooldown_outside_zero_one_is_refused(tmp_path, bad):
    with pytest.raises(UsageError, match="--cooldown"):
        TrainConfig(out=str(tmp_path / "r"), steps=4, cooldown=bad, **TINY).validate()


def test_the_trainer_follows_the_schedule_and_says_when_a_stop_leaves_it_unfinished(tmp_path, capsys):
    trainer = Trainer(TrainConfig(out=str(tmp_path / "r"), steps=40, cooldown=0.5, warmup=1, lr=1e-3,
                                  minutes=1e-9, **TINY))  # the time budget ends the run after one step
    trainer.run()
    assert trainer.step == 1
    assert trainer.opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert trainer.lr_at(30) == pytest.approx(1e-3 * 10 / 20)
    err = capsys.readouterr().err
    assert "cool-down is unfinished" in err and "step 1 of 40" in err
