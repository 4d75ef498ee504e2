"""Training-time sampling controls: the distribution (temperature, top-k, top-p), the log-probabilities the policy
gradient takes under it, generation_kwargs, and saving it without overwriting the user's generation config."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GenerationConfig

from seqgan_hf import SeqGANConfig, SeqGANTrainer
from seqgan_hf.rollout import RolloutEngine
from seqgan_hf.sampling import SamplingDistribution
from tests.builders import (
    classifier_token_ids,
    lm_token_ids,
    quick_config,
    tiny_gpt2,
    tiny_gpt2_classifier,
    train_tokenizer,
)


def test_truncation_keeps_the_top_k_and_the_nucleus():
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0]])
    top2 = SamplingDistribution(top_k=2).logits(logits)
    assert torch.isfinite(top2).tolist() == [[True, True, False, False, False]]
    probs = torch.softmax(logits, -1)[0]  # 0.636, 0.234, 0.086, 0.032, 0.012
    nucleus = SamplingDistribution(top_p=0.85).logits(logits)  # 0.636 < 0.85 <= 0.636 + 0.234
    assert torch.isfinite(nucleus).tolist() == [[True, True, False, False, False]]
    assert probs[:2].sum() > 0.85 > probs[0]
    assert torch.isfinite(SamplingDistribution(top_p=0.5).logits(logits)).sum() == 1  # at least the top token
    scaled = SamplingDistribution(temperature=2.0).logits(logits)
    assert torch.equal(scaled, logits / 2.0)


def test_log_probs_are_those_of_the_truncated_renormalised_distribution():
    torch.manual_seed(0)
    logits = torch.randn(3, 7, 11)
    tokens = logits.argmax(-1)
    distribution = SamplingDistribution(temperature=0.7, top_k=3)
    log_probs = distribution.token_log_probs(logits, tokens)
    scaled = logits / 0.7
    top3 = scaled.topk(3, dim=-1).values
    expected = scaled.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(top3, dim=-1)
    assert torch.allclose(log_probs, expected, atol=1e-6)
    # A token outside the cut (e.g. rounded out by a second forward) keeps a finite log-probability.
    outside = logits.argmin(-1)
    assert torch.isfinite(distribution.token_log_probs(logits, outside)).all()


def test_engine_samples_only_inside_the_top_k():
    tokenizer = train_tokenizer()
    model = tiny_gpt2(**lm_token_ids(tokenizer)).eval()
    engine = RolloutEngine(tokenizer.bos_token_id, sequence_length=6, rollout_num=2, top_k=2)
    rng = torch.Generator().manual_seed(0)
    sequences = engine.sample(model, 32, rng=rng)
    bos = torch.full((32, 1), tokenizer.bos_token_id)
    with torch.no_grad():
        logits = model(input_ids=torch.cat([bos, sequences[:, :-1]], 1)).logits
    top2 = logits.topk(2, dim=-1).indices
    assert (top2 == sequences.unsqueeze(-1)).any(-1).all()
    rollouts = engine.rollouts(model, sequences, rng=rng)  # every completion token too
    flat = rollouts.flatten(0, 2)
    with torch.no_grad():
        logits = model(input_ids=torch.cat([torch.full((flat.shape[0], 1), tokenizer.bos_token_id),
                                            flat[:, :-1]], 1)).logits
    assert (logits.topk(2, dim=-1).indices == flat.unsqueeze(-1)).any(-1).all()


def _trainer(tmp_path, text_dataset, **overrides):
    tokenizer = train_tokenizer()
    return SeqGANTrainer(tiny_gpt2(**lm_token_ids(tokenizer)),
                         tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
                         quick_config(tmp_path, sequence_length=8, **overrides), train_dataset=text_dataset,
                         processing_class=tokenizer)


def test_the_policy_gradient_takes_log_probs_under_the_sampling_distribution(tmp_path, text_dataset):
    trainer = _trainer(tmp_path, text_dataset, top_k=1, temperature=0.5)
    generator = trainer.model.eval()
    sequences = trainer.rollout_engine.sample(generator, 4, rng=torch.Generator().manual_seed(0))
    # top_k=1 samples greedily, with probability 1: every log-probability is 0.
    assert torch.allclose(trainer.algorithm.token_log_probs(generator, sequences), torch.zeros(4, 8), atol=1e-6)
    untruncated = _trainer(tmp_path, text_dataset, temperature=0.5, overwrite_output_dir=True)
    assert (untruncated.algorithm.token_log_probs(untruncated.model.eval(), sequences) < 0).all()


def test_generation_kwargs_set_the_sampling_fields_or_are_refused(tmp_path):
    config = SeqGANConfig(output_dir=str(tmp_path), generation_kwargs='{"top_k": 20, "top_p": 0.9, "do_sample": true}')
    assert (config.top_k, config.top_p, config.temperature) == (20, 0.9, 1.0)
    with pytest.raises(ValueError, match="'repetition_penalty' is not applied by SeqGAN's sampler"):
        SeqGANConfig(output_dir=str(tmp_path), generation_kwargs={"repetition_penalty": 1.2})
    with pytest.raises(ValueError, match="do_sample=False"):
        SeqGANConfig(output_dir=str(tmp_path), generation_kwargs={"do_sample": False})
    with pytest.raises(ValueError, match="top_k=5 contradicts top_k=3"):
        SeqGANConfig(output_dir=str(tmp_path), top_k=3, generation_kwargs={"top_k": 5})
    with pytest.raises(ValueError, match="SeqGANConfig.top_p"):
        SeqGANConfig(output_dir=str(tmp_path), top_p=0.0)
    with pytest.raises(ValueError, match="SeqGANConfig.top_k"):
        SeqGANConfig(output_dir=str(tmp_path), top_k=-1)


def test_the_users_generation_config_is_saved_as_given_and_training_sampling_beside_it(tmp_path, text_dataset):
    trainer = _trainer(tmp_path, text_dataset, top_k=5, top_p=0.9, temperature=0.8, mle_epochs=0,
                       discriminator_pretrain_rounds=0, adversarial_iterations=0)
    trainer.model.generation_config = GenerationConfig(do_sample=False, num_beams=2, max_new_tokens=3)
    trainer.train()
    trainer.save_model()
    out = tmp_path / "out"
    own = json.loads((out / "generation_config.json").read_text())
    assert own["num_beams"] == 2 and own.get("do_sample", False) is False and own["max_new_tokens"] == 3
    training = GenerationConfig.from_pretrained(out, "training_generation_config.json")
    assert (training.do_sample, training.temperature, training.top_k, training.top_p, training.max_new_tokens) == (
        True, 0.8, 5, 0.9, 8)

    asked = _trainer(tmp_path / "asked", text_dataset, top_k=5, mle_epochs=0, discriminator_pretrain_rounds=0,
                     adversarial_iterations=0, overwrite_generation_config=True)
    asked.train()
    asked.save_model()
    written = GenerationConfig.from_pretrained(tmp_path / "asked" / "out")
    assert (written.do_sample, written.top_k, written.max_new_tokens) == (True, 5, 8)
