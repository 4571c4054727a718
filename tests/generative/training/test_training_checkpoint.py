"""A tiny training run lowers the loss; checkpoints round-trip, resume exactly, and reject bad files."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from diffusio.errors import UsageError
from diffusio.generative.checkpoint.files import load_config
from diffusio.generative.checkpoint.models import load_model
from diffusio.generative.training.losses import edm_loss
from diffusio.generative.training.trainer import TrainConfig, Trainer, train

TINY = dict(data="digits", batch_size=32, base=8, mults=(1, 2), attn_levels=(1,), cond="class",
            every=0, quiet=True, lr=2e-3, warmup=10)


def held_out_loss(trainer, seed=123):
    """EDM loss of the live net on a fixed batch with fixed noise."""
    gen = torch.Generator().manual_seed(seed)
    x0, labels = trainer.images[:128], trainer.labels[:128]
    with torch.no_grad():
        return float(edm_loss(trainer.denoiser, x0, trainer.cond.class_embeddings[labels], gen))


@pytest.mark.parametrize("bf16", ["off", "on"])  # "on" runs emulated where the CPU lacks bfloat16: slow, but right
def test_tiny_training_lowers_the_loss(tmp_path, bf16):
    trainer = Trainer(TrainConfig(out=str(tmp_path / "run"), steps=150, bf16=bf16, **TINY))
    before = held_out_loss(trainer)
    trainer.run()
    after = held_out_loss(trainer)
    assert after < 0.8 * before
    assert load_config(tmp_path / "run")["training"]["bf16_used"] == (bf16 == "on")
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0


@pytest.mark.parametrize("bf16", ["off", "on"])
def test_resume_equals_uninterrupted_run_and_same_seed_same_bytes(tmp_path, bf16):
    tiny = dict(TINY, bf16=bf16)
    train(TrainConfig(out=str(tmp_path / "a"), steps=20, **tiny))
    train(TrainConfig(out=str(tmp_path / "a"), steps=40, **tiny), resume=True)
    train(TrainConfig(out=str(tmp_path / "b"), steps=40, **tiny))
    a = (tmp_path / "a" / "model.safetensors").read_bytes()
    b = (tmp_path / "b" / "model.safetensors").read_bytes()
    assert a == b
    state = json.loads((tmp_path / "a" / "train_state.json").read_text())
    assert state["step"] == 40 and len(state["losses"]) == 40


def test_checkpoint_round_trip(tmp_path):
    trainer = Trainer(TrainConfig(out=str(tmp_path / "run"), steps=3, **TINY))
    trainer.run()
    model = load_model(tmp_path / "run")
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    for k, v in model.denoiser.net.state_dict().items():
        assert torch.equal(v, saved[f"net.{k}"])
        assert torch.equal(v, trainer.ema.net.state_dict()[k])
    assert model.config["conditioning"]["kind"] == "class"
    x, sigma = torch.randn(2, 1, 8, 8), torch.tensor([1.0, 2.0])
    cond = model.class_embeddings[:2]
    assert torch.allclose(model.denoiser(x, sigma, cond), trainer.ema(x, sigma, cond))


def test_existing_run_is_not_overwritten_and_resume_needs_a_run(tmp_path):
    train(TrainConfig(out=str(tmp_path / "run"), steps=2, **TINY))
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(UsageError, match="already holds a run"):
        Trainer(TrainConfig(out=str(tmp_path / "run"), steps=2, **TINY))
    with pytest.raises(UsageError, match="no run to resume"):
        Trainer(TrainConfig(out=str(tmp_path / "other"), steps=2, **TINY), resume=True)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


@pytest.fixture
def run_dir(tmp_path):
    train(TrainConfig(out=str(tmp_path / "run"), steps=2, **TINY))
    return tmp_path / "run"


def test_truncated_checkpoint_is_rejected(run_dir):
    path = run_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(UsageError, match="corrupt or truncated"):
        load_model(run_dir)


def test_checkpoint_of_another_model_type_is_rejected(run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["net"]["base"] = 16
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError, match="another model type"):
        load_model(other)


def test_foreign_config_is_rejected(run_dir):
    (run_dir / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UsageError, match="not a diffusio-model config"):
        load_config(run_dir)
    (run_dir / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_config(run_dir)


def test_bad_training_arguments(tmp_path):
    with pytest.raises(UsageError, match="unknown dataset"):
        Trainer(TrainConfig(out=str(tmp_path / "x"), steps=1, **{**TINY, "data": "imagenet"}))
    with pytest.raises(UsageError, match="--steps"):
        Trainer(TrainConfig(out=str(tmp_path / "x"), steps=0, **TINY))
    with pytest.raises(UsageError, match="--bf16 must be auto, on or off"):
        Trainer(TrainConfig(out=str(tmp_path / "x"), steps=1, **{**TINY, "bf16": "fast"}))
    assert not (tmp_path / "x").exists()


def test_run_state_is_one_verified_unit(tmp_path):
    """train_state.json names the state file and its checksum; any damage is a clean --resume error."""
    run = tmp_path / "run"
    train(TrainConfig(out=str(run), steps=4, **TINY))
    train(TrainConfig(out=str(run), steps=6, **TINY), resume=True)
    meta = json.loads((run / "train_state.json").read_text())
    assert meta["state_file"] == "train_state-000000006.safetensors" and len(meta["sha256"]) == 64
    assert sorted(p.name for p in run.glob("train_state*.safetensors")) == [meta["state_file"]]  # old one gone
    state = run / meta["state_file"]
    good = state.read_bytes()
    state.write_bytes(good[:-8] + bytes(b ^ 0xFF for b in good[-8:]))  # same size, other bytes
    with pytest.raises(UsageError, match="does not match the checksum"):
        Trainer(TrainConfig(out=str(run), steps=8, **TINY), resume=True)
    state.unlink()
    with pytest.raises(UsageError, match="is missing"):
        Trainer(TrainConfig(out=str(run), steps=8, **TINY), resume=True)
    state.write_bytes(good)
    (run / "train_state.json").write_text("{not json")
    with pytest.raises(UsageError, match="is damaged"):
        Trainer(TrainConfig(out=str(run), steps=8, **TINY), resume=True)
