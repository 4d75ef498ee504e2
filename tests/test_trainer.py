"""SeqGANTrainer end to end: every model pair trains, saves, reloads in a fresh process and generates."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import datasets
import pytest
import torch

from seqgan_hf import SeqGANTrainer
from tests.builders import (
    classifier_token_ids,
    lm_token_ids,
    quick_config,
    tiny_bert_classifier,
    tiny_cnn,
    tiny_gpt2,
    tiny_gpt2_classifier,
    tiny_llama,
    tiny_lstm,
    train_tokenizer,
)


def oracle_like_dataset(vocab_size: int = 40, length: int = 6, count: int = 32) -> datasets.Dataset:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab_size, (count, length), generator=generator)
    return datasets.Dataset.from_dict({"input_ids": ids.tolist()})


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> bool:
    return any(not torch.equal(before[name], param.detach()) for name, param in model.named_parameters())


def load_and_generate_in_fresh_process(output_dir, expected_class: str) -> dict:
    """Load generator and discriminator with the Auto classes in a new interpreter and generate."""
    script = textwrap.dedent(
        f"""
        import json, torch
        import seqgan_hf  # registers the paper's models with the Auto classes
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, GenerationConfig
        generator = AutoModelForCausalLM.from_pretrained({str(output_dir)!r})
        discriminator = AutoModelForSequenceClassification.from_pretrained({str(output_dir)!r} + "/discriminator")
        # The distribution training sampled from, saved beside the model's own generation config.
        training = GenerationConfig.from_pretrained({str(output_dir)!r}, "training_generation_config.json")
        prompt = torch.full((2, 1), training.bos_token_id, dtype=torch.long)
        out = generator.generate(prompt, attention_mask=torch.ones_like(prompt), generation_config=training)
        print(json.dumps({{"generator": type(generator).__name__, "discriminator": type(discriminator).__name__,
                          "shape": list(out.shape), "do_sample": training.do_sample}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["generator"] == expected_class
    return info


@pytest.mark.slow
def test_paper_models_train_save_and_reload(tmp_path):
    generator, discriminator = tiny_lstm(), tiny_cnn()
    g_before, d_before = snapshot(generator), snapshot(discriminator)
    trainer = SeqGANTrainer(
        model=generator, discriminator=discriminator, args=quick_config(tmp_path, logging_steps=1),
        train_dataset=oracle_like_dataset(),
    )
    result = trainer.train()
    assert result.global_step == trainer.state.max_steps == 4 + 1 + 2  # 4 MLE batches, 1 D round, 2 iterations
    assert changed(g_before, trainer.model) and changed(d_before, trainer.discriminator)
    logged = {key for entry in trainer.state.log_history for key in entry}
    for key in ("mle/loss", "adversarial/g_loss", "adversarial/reward_mean", "discriminator/loss",
                "discriminator/accuracy_real", "discriminator/accuracy_fake", "phase"):
        assert key in logged, key
    phases = [entry["phase"] for entry in trainer.state.log_history if "phase" in entry]
    assert phases == sorted(phases) and set(phases) == {1, 2, 3}

    trainer.save_model()
    info = load_and_generate_in_fresh_process(tmp_path / "out", "LSTMForCausalLM")
    assert info["discriminator"] == "CNNForSequenceClassification"
    assert info["shape"] == [2, 1 + 6] and info["do_sample"] is True


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_generator, make_discriminator, num_labels",
    [(tiny_gpt2, tiny_bert_classifier, 1), (tiny_llama, tiny_gpt2_classifier, 2)],
    ids=["gpt2+bert-sigmoid", "llama+gpt2-softmax"],
)
def test_transformer_pairs_train_on_text(tmp_path, text_dataset, make_generator, make_discriminator, num_labels):
    tokenizer = train_tokenizer("wordlevel")
    generator = make_generator(**lm_token_ids(tokenizer))
    discriminator = make_discriminator(num_labels=num_labels, **classifier_token_ids(tokenizer))
    g_before, d_before = snapshot(generator), snapshot(discriminator)
    trainer = SeqGANTrainer(
        model=generator, discriminator=discriminator, args=quick_config(tmp_path, sequence_length=8),
        train_dataset=text_dataset, processing_class=tokenizer,
    )
    assert trainer.discriminator_adapter.num_labels == num_labels
    trainer.train()
    assert changed(g_before, trainer.model) and changed(d_before, trainer.discriminator)
    trainer.save_model()
    info = load_and_generate_in_fresh_process(tmp_path / "out", type(generator).__name__)
    assert info["discriminator"] == type(discriminator).__name__


@pytest.mark.slow
def test_discriminator_with_its_own_tokenizer_reads_retokenized_text(tmp_path, text_dataset):
    g_tokenizer, d_tokenizer = train_tokenizer("wordlevel"), train_tokenizer("wordpiece")
    assert g_tokenizer.get_vocab() != d_tokenizer.get_vocab()
    generator = tiny_gpt2(**lm_token_ids(g_tokenizer))
    discriminator = tiny_bert_classifier(num_labels=2, **classifier_token_ids(d_tokenizer))
    trainer = SeqGANTrainer(
        model=generator, discriminator=discriminator, args=quick_config(tmp_path, sequence_length=8),
        train_dataset=text_dataset, processing_class=g_tokenizer, discriminator_processing_class=d_tokenizer,
    )
    # D sees exactly what its own tokenizer makes of the generator's decoded text (EOS and after dropped).
    sequences = trainer.real.input_ids[:3]
    encoded = trainer.discriminator_adapter.encode(sequences, torch.device("cpu"))
    texts = []
    for row in sequences.tolist():
        eos = row.index(g_tokenizer.eos_token_id) if g_tokenizer.eos_token_id in row else len(row)
        texts.append(g_tokenizer.decode(row[:eos], skip_special_tokens=True))
    expected = d_tokenizer(texts, padding=True, return_tensors="pt")
    assert torch.equal(encoded["input_ids"], expected["input_ids"])
    d_before = snapshot(discriminator)
    trainer.train()
    assert changed(d_before, trainer.discriminator)
    trainer.save_model()
    assert (tmp_path / "out" / "discriminator" / "tokenizer.json").exists()


def test_policy_gradient_raises_log_prob_of_rewarded_sequences(tmp_path):
    generator = tiny_lstm(vocab_size=12)
    trainer = SeqGANTrainer(
        model=generator, discriminator=tiny_cnn(vocab_size=12), args=quick_config(tmp_path),
        train_dataset=oracle_like_dataset(vocab_size=12),
    )
    good = torch.tensor([[1, 2, 3, 4, 5, 6]])
    bad = torch.tensor([[7, 7, 8, 8, 9, 9]])
    sequences = torch.cat([good, bad])
    advantages = torch.tensor([[1.0] * 6, [0.1] * 6])
    mask = torch.ones_like(sequences, dtype=torch.bool)

    def log_prob(sequence):
        with torch.no_grad():
            inputs = torch.cat([torch.zeros(1, 1, dtype=torch.long), sequence[:, :-1]], dim=1)
            return torch.log_softmax(generator(inputs).logits, -1).gather(-1, sequence[..., None]).sum().item()

    before_good, before_bad = log_prob(good), log_prob(bad)
    optimizer = torch.optim.SGD(generator.parameters(), lr=0.5)
    loss = trainer.algorithm.policy_gradient_loss(generator, sequences, advantages, mask)
    loss.backward()
    optimizer.step()
    gain_good, gain_bad = log_prob(good) - before_good, log_prob(bad) - before_bad
    assert gain_good > 0
    assert gain_good > gain_bad  # the higher-reward sequence gains more


def test_policy_gradient_ignores_tokens_after_eos(tmp_path):
    generator = tiny_lstm(vocab_size=12)
    trainer = SeqGANTrainer(
        model=generator, discriminator=tiny_cnn(vocab_size=12), args=quick_config(tmp_path),
        train_dataset=oracle_like_dataset(vocab_size=12),
    )
    sequences = torch.tensor([[1, 2, 3, 4, 5, 6]])
    mask = torch.tensor([[True, True, True, False, False, False]])
    base = torch.ones(1, 6)
    changed_tail = base.clone()
    changed_tail[0, 3:] = 100.0
    loss_a = trainer.algorithm.policy_gradient_loss(generator, sequences, base, mask)
    loss_b = trainer.algorithm.policy_gradient_loss(generator, sequences, changed_tail, mask)
    torch.testing.assert_close(loss_a, loss_b)


def test_each_phase_can_be_skipped(tmp_path):
    generator = tiny_lstm()
    trainer = SeqGANTrainer(
        model=generator, discriminator=tiny_cnn(),
        args=quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=1),
        train_dataset=oracle_like_dataset(),
    )
    trainer.train()
    assert trainer.state.global_step == 1
    assert not any("mle/loss" in entry for entry in trainer.state.log_history)


def test_rollout_and_score_batch_sizes_bound_the_forwards(tmp_path):
    discriminator = tiny_cnn()
    scored_batches = []
    discriminator.register_forward_pre_hook(
        lambda module, args, kwargs: scored_batches.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    trainer = SeqGANTrainer(
        model=tiny_lstm(), discriminator=discriminator,
        args=quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=1,
                          d_steps=0, rollout_batch_size=5, score_batch_size=3),
        train_dataset=oracle_like_dataset(),
    )
    assert trainer.rollout_engine.rollout_batch_size == 5
    scored_batches.clear()  # the construction-time probe of the discriminator (2 sequences)
    trainer.train()
    # One g-step: B*N*(T-1) rollouts + B sequences scored, never more than 3 at a time.
    assert sum(scored_batches) == 8 * 2 * 5 + 8
    assert max(scored_batches) == 3


def test_delayed_rollout_policy_moves_towards_the_generator(tmp_path):
    trainer = SeqGANTrainer(
        model=tiny_lstm(), discriminator=tiny_cnn(),
        args=quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=1,
                          d_steps=0, rollout_policy="delayed", rollout_update_rate=0.8),
        train_dataset=oracle_like_dataset(),
    )
    initial = snapshot(trainer.model)
    trainer.train()
    rollout_params = dict(trainer.algorithm.rollout_model.named_parameters())
    for name, param in trainer.model.named_parameters():
        expected = 0.8 * initial[name] + 0.2 * param.detach()
        torch.testing.assert_close(rollout_params[name].detach(), expected)


def test_evaluate_reports_held_out_nll_and_evaluator_metrics(tmp_path, text_dataset):
    tokenizer = train_tokenizer("wordlevel")
    calls = []

    def evaluator(generator):
        calls.append(generator.training)
        return {"probe": 1.5}

    trainer = SeqGANTrainer(
        model=tiny_gpt2(**lm_token_ids(tokenizer)),
        discriminator=tiny_bert_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
        args=quick_config(tmp_path, sequence_length=8, per_device_eval_batch_size=16),
        train_dataset=text_dataset, eval_dataset=text_dataset.select(range(16)), processing_class=tokenizer,
        evaluator=evaluator,
    )
    metrics = trainer.evaluate()
    assert metrics["eval_probe"] == 1.5 and calls == [False]
    assert 0 < metrics["eval_loss"] < 10  # per-token NLL of the held-out text, through the Trainer's loop
    trainer.train()
    # Evaluated again at the end of MLE pretraining and at the end of training.
    assert set(trainer.phase_metrics) == {"mle", "adversarial"}
    assert any("eval_probe" in entry for entry in trainer.state.log_history)


def test_phase_end_evaluation_is_not_repeated_at_an_eval_step(tmp_path):
    calls = []

    def evaluator(generator):
        calls.append(1)
        return {"probe": 1.0}

    trainer = SeqGANTrainer(
        model=tiny_lstm(), discriminator=tiny_cnn(),
        # 4 MLE units, then 1 D round and 2 iterations: eval every 4 units lands on the end of MLE.
        args=quick_config(tmp_path, eval_strategy="steps", eval_steps=4),
        train_dataset=oracle_like_dataset(), evaluator=evaluator,
    )
    trainer.train()
    eval_steps = [entry["step"] for entry in trainer.state.log_history if "eval_probe" in entry]
    assert len(eval_steps) == len(set(eval_steps))  # never two evaluations at one step
    assert eval_steps[0] == 4 and "mle" in trainer.phase_metrics


def test_causal_discriminator_scores_rollouts_on_cached_prefixes(tmp_path, text_dataset):
    """discriminator_prefix_cache (default) engages for a GPT-2 discriminator and trains as full forwards do."""
    tokenizer = train_tokenizer("wordlevel")
    runs = {}
    for share in (True, False):
        trainer = SeqGANTrainer(
            model=tiny_gpt2(**lm_token_ids(tokenizer)),
            discriminator=tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
            args=quick_config(tmp_path / str(share), sequence_length=8, mle_epochs=0, discriminator_prefix_cache=share),
            train_dataset=text_dataset, processing_class=tokenizer,
        )
        counter = trainer.rollout_engine.counter
        trainer.train()
        runs[share] = (trainer, counter.discriminator_positions, snapshot(trainer.model), counter.scored_sequences)
    assert runs[True][0].discriminator_reward.prefix_sharing.enabled is True
    assert runs[False][0].discriminator_reward.prefix_sharing is None
    # 2 g-steps of 8 sequences, 2 rollouts, T = 8: at most 2 * (8*2*7 + 8) scored sequences (prefixes that already
    # hold EOS take their sequence's reward unscored), each fed in full (8 positions) without sharing.
    assert runs[False][3] == runs[True][3] <= 2 * (8 * 2 * 7 + 8)
    assert runs[False][1] == runs[False][3] * 8
    assert runs[True][1] < 0.75 * runs[False][1]  # sampled text ends early (EOS): those rows are fed in full
    for name, value in runs[False][2].items():
        torch.testing.assert_close(runs[True][2][name], value, rtol=1e-4, atol=1e-5)
