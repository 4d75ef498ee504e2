"""Non-finite guard: a NaN/inf loss or reward stops training with an error naming phase and step, before any
update applies it, and non-finite weights are never written."""

from __future__ import annotations

import datasets
import pytest
import torch
from safetensors.torch import load_file

from seqgan_hf import SeqGANTrainer
from seqgan_hf.checkpoint import NonFiniteError
from seqgan_hf.rewards import TensorReward
from tests.builders import quick_config, tiny_cnn, tiny_lstm


def _data():
    torch.manual_seed(0)
    return datasets.Dataset.from_dict({"input_ids": torch.randint(1, 40, (16, 6)).tolist()})


def _all_finite(tensors) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def test_nan_reward_stops_adversarial_training_and_checkpoints_stay_finite(tmp_path):
    args = quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=3,
                        save_strategy="steps", save_steps=1)
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=args, train_dataset=_data())
    reward = trainer.algorithm.reward
    calls = {"n": 0}

    def poisoned(sequences):
        calls["n"] += 1
        rewards = reward(sequences)
        return torch.full_like(rewards, float("nan")) if trainer.state.global_step >= 1 else rewards

    trainer.algorithm.reward = TensorReward(poisoned)
    with pytest.raises(NonFiniteError, match=r"reward.*phase 'adversarial', adversarial iteration 2/3"):
        trainer.train()
    assert calls["n"] > 0
    # The generator was not updated with the NaN reward; the only checkpoint is the finite one of iteration 1.
    assert _all_finite(trainer.model.parameters()) and _all_finite(trainer.discriminator.parameters())
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1"]
    assert _all_finite(load_file(out / "checkpoint-1" / "model.safetensors").values())
    assert not list(out.glob("tmp-checkpoint-*"))


def test_nan_mle_loss_names_the_batch(tmp_path):
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                            train_dataset=_data())
    compute_loss = trainer.compute_loss
    batches = {"n": 0}

    def loss_with_nan(model, inputs, *args, **kwargs):
        batches["n"] += 1
        loss = compute_loss(model, inputs, *args, **kwargs)
        return loss * float("nan") if batches["n"] == 2 else loss

    trainer.compute_loss = loss_with_nan
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(NonFiniteError, match=r"MLE loss.*phase 'mle', MLE batch 2/2 \(training unit 2 of 5\)"):
        trainer.train()
    assert _all_finite(trainer.model.parameters())
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())  # batch 1 applied


def test_nan_discriminator_loss_stops_pretraining(tmp_path):
    discriminator = tiny_cnn()
    with torch.no_grad():
        discriminator.get_input_embeddings().weight[3] = float("inf")  # any sequence with token 3 -> NaN logits
    data = datasets.Dataset.from_dict({"input_ids": [[3, 4, 5, 6, 7, 8]] * 16})
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=discriminator,
                            args=quick_config(tmp_path, mle_epochs=0), train_dataset=data)
    with pytest.raises(NonFiniteError, match=r"discriminator loss.*discriminator pretraining round 1/1"):
        trainer.train()


def test_save_model_refuses_non_finite_weights(tmp_path):
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                            train_dataset=_data())
    with torch.no_grad():
        trainer.model.lm_head.bias[0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"generator\.lm_head\.bias"):
        trainer.save_model()
    assert not (tmp_path / "out" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "discriminator").exists()
