"""The Trainer's memory knobs change memory only: gradient accumulation and activation checkpointing."""

from __future__ import annotations

import pytest
import torch

from seqgan_hf import SeqGANTrainer
from tests.builders import (
    classifier_token_ids,
    lm_token_ids,
    quick_config,
    tiny_cnn,
    tiny_gpt2,
    tiny_gpt2_classifier,
    tiny_lstm,
    train_tokenizer,
)


def _train(tmp_path, text_dataset, **overrides):
    """Every phase, with plain SGD: an update's size then depends on the gradient's scale (Adam would hide a
    wrongly scaled sum of micro-batch gradients). D without dropout: micro-batches would draw other masks."""
    tokenizer = train_tokenizer()
    args = quick_config(tmp_path, sequence_length=8, optim="sgd", mle_learning_rate=0.5, learning_rate=0.5,
                        discriminator_learning_rate=0.5, num_negatives=24, max_grad_norm=0.0, **overrides)
    trainer = SeqGANTrainer(tiny_gpt2(**lm_token_ids(tokenizer)),
                            tiny_gpt2_classifier(num_labels=2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                                 **classifier_token_ids(tokenizer)), args,
                            train_dataset=text_dataset, processing_class=tokenizer)
    trainer.train()
    return trainer


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, atol: float) -> None:
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.allclose(pa, pb, atol=atol), (name, (pa - pb).abs().max())


@pytest.mark.slow
def test_accumulated_micro_batches_give_the_large_batch_update(tmp_path, text_dataset):
    large = _train(tmp_path / "large", text_dataset, per_device_train_batch_size=16, discriminator_batch_size=16)
    micro = _train(tmp_path / "micro", text_dataset, per_device_train_batch_size=8, discriminator_batch_size=8,
                   gradient_accumulation_steps=2)
    # The same number of updates of each kind, each over the same 16 sequences.
    assert micro.state.global_step == large.state.global_step == 4 + 1 + 2
    logged = [e for e in micro.state.log_history if "adversarial/global_batch_size" in e]
    assert logged and all(e["adversarial/global_batch_size"] == 16 for e in logged)
    _assert_same_weights(micro.model, large.model, atol=1e-5)
    _assert_same_weights(micro.discriminator, large.discriminator, atol=1e-5)
    # ... and they did move (with lr 0.5, a wrongly weighted micro-batch sum would not match).
    untrained = tiny_gpt2(**lm_token_ids(train_tokenizer()))
    assert not torch.allclose(untrained.transformer.wte.weight, micro.model.transformer.wte.weight, atol=1e-3)


@pytest.mark.slow
def test_activation_checkpointing_leaves_training_unchanged(tmp_path, text_dataset):
    plain = _train(tmp_path / "plain", text_dataset, beta=0.5)
    checkpointed = _train(tmp_path / "checkpointed", text_dataset, beta=0.5, gradient_checkpointing=True)
    assert checkpointed.model.is_activation_checkpointing and not plain.model.is_activation_checkpointing
    _assert_same_weights(checkpointed.model, plain.model, atol=1e-6)


def test_activation_checkpointing_is_refused_for_a_model_without_it(tmp_path):
    with pytest.raises(ValueError, match="gradient_checkpointing: LSTMForCausalLM does not support"):
        SeqGANTrainer(tiny_lstm(), tiny_cnn(), quick_config(tmp_path, gradient_checkpointing=True),
                      train_dataset=None)
