"""`SeqGANTrainer` on prompt-completion datasets (TRL's standard and conversational formats): every phase runs,
the discriminator judges (prompt, completion) pairs, the completion pages show the prompts, and data of the wrong
kind or length is refused before any work."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import datasets
import pytest
import torch

from seqgan_hf import SeqGANTrainer
from seqgan_hf.discriminator import DiscriminatorAdapter
from tests.builders import (
    CORPUS,
    classifier_token_ids,
    lm_token_ids,
    quick_config,
    tiny_cnn,
    tiny_gpt2,
    tiny_gpt2_classifier,
    tiny_lstm,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _pairs(rows: int = 32) -> datasets.Dataset:
    """Each corpus line's first words as the prompt, the rest as the completion."""
    lines = (CORPUS * 2)[:rows]
    return datasets.Dataset.from_dict({
        "prompt": [" ".join(line.split()[:2]) for line in lines],
        "completion": [" ".join(line.split()[2:]) for line in lines],
    })


def _spy_pairs(monkeypatch) -> list:
    """Record the prompts every discriminator input was built with."""
    seen = []
    encode = DiscriminatorAdapter.encode

    def spy(self, sequences, device, prompts=None):
        seen.append(None if prompts is None else prompts.token_lists())
        return encode(self, sequences, device, prompts)

    monkeypatch.setattr(DiscriminatorAdapter, "encode", spy)
    return seen


@pytest.mark.parametrize("models", ["gpt2", "lstm_cnn"])
def test_prompt_completion_training_runs_every_phase_on_pairs(tmp_path, word_tokenizer, monkeypatch, models):
    ids = lm_token_ids(word_tokenizer)
    if models == "gpt2":
        model = tiny_gpt2(**ids)
        discriminator = tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(word_tokenizer))
    else:
        model = tiny_lstm(**ids)
        discriminator = tiny_cnn(num_labels=2, **classifier_token_ids(word_tokenizer))
    seen = _spy_pairs(monkeypatch)
    args = quick_config(tmp_path, log_completions=True, num_completions_to_log=3, logging_steps=1,
                        max_prompt_length=3)
    trainer = SeqGANTrainer(model, discriminator, args=args, train_dataset=_pairs(), eval_dataset=_pairs(8),
                            processing_class=word_tokenizer)
    assert trainer.data.prompt_width == 3
    trainer.train()
    # Every discriminator input (rounds, rewards, the completion pages) came with its prompts.
    assert seen and all(prompts is not None and all(len(p) == 2 for p in prompts) for prompts in seen)
    assert "eval_loss" in trainer.evaluate()  # held-out NLL of the completions given their prompts
    pages = sorted((tmp_path / "out" / "completions").glob("step_*.json"))
    assert len(pages) == args.adversarial_iterations  # one per g-step (logging_steps=1)
    logged = json.loads(pages[-1].read_text())["completions"]
    prompts = {" ".join(line.split()[:2]) for line in CORPUS}
    assert logged and all(entry["prompt"] in prompts for entry in logged)


def test_conversational_pairs_train_with_a_chat_template(tmp_path, word_tokenizer):
    word_tokenizer.chat_template = (
        "{% for message in messages %}{{ message['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}{% endif %}"
    )
    lines = CORPUS[:16]
    dataset = datasets.Dataset.from_dict({
        "prompt": [[{"role": "user", "content": " ".join(line.split()[:2])}] for line in lines],
        "completion": [[{"role": "assistant", "content": " ".join(line.split()[2:])}] for line in lines],
    })
    trainer = SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)),
                            tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(word_tokenizer)),
                            args=quick_config(tmp_path), train_dataset=dataset, processing_class=word_tokenizer)
    first = word_tokenizer(" ".join(lines[0].split()[:2]), add_special_tokens=False)["input_ids"]
    assert trainer.prompts[0] == first
    trainer.train()
    assert trainer.state.global_step > 0


def test_held_out_data_of_another_kind_is_refused(tmp_path, word_tokenizer, text_dataset):
    model = tiny_gpt2(**lm_token_ids(word_tokenizer))
    with pytest.raises(ValueError, match="eval_dataset holds plain sequences but train_dataset holds prompt"):
        SeqGANTrainer(model, args=quick_config(tmp_path, adversarial_iterations=0, discriminator_pretrain_rounds=0),
                      train_dataset=_pairs(), eval_dataset=text_dataset, processing_class=word_tokenizer)


def test_pairs_wider_than_the_models_positions_are_refused_before_any_work(tmp_path, word_tokenizer):
    model = tiny_gpt2(n_positions=8, **lm_token_ids(word_tokenizer))
    with pytest.raises(ValueError, match=r"model has 8 positions but its inputs need 10: sequence_length=6 \+ 3 "
                                         r"prompt tokens .*Lower sequence_length or max_prompt_length"):
        SeqGANTrainer(model, args=quick_config(tmp_path, max_prompt_length=3), train_dataset=_pairs(),
                      processing_class=word_tokenizer)


def test_reward_functions_get_the_prompts(tmp_path, word_tokenizer):
    calls = []

    def prompt_echo(prompts, completions, **kwargs):
        calls.append((list(prompts), list(completions)))
        return [float(prompt.split()[0] in completion.split()) for prompt, completion in zip(prompts, completions)]

    args = quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=1,
                        d_steps=0)
    trainer = SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)), args=args, train_dataset=_pairs(),
                            processing_class=word_tokenizer, reward_funcs=prompt_echo)
    trainer.train()
    prompts = {" ".join(line.split()[:2]) for line in CORPUS}
    assert calls and all(set(batch) <= prompts for batch, _ in calls)

    def no_prompts(completions, completion_ids):
        return [0.0] * len(completions)

    with pytest.raises(TypeError, match=r"does not take \['prompts'\]"):
        SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)), args=args, train_dataset=_pairs(),
                      processing_class=word_tokenizer, reward_funcs=no_prompts)


def test_generator_step_rewards_completion_tokens_of_dataset_prompts(tmp_path, word_tokenizer):
    """The g-step hands the reward hook [B, T] completion rewards and the prompts it drew from the dataset."""
    trainer = SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)),
                            tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(word_tokenizer)),
                            args=quick_config(tmp_path, adversarial_iterations=1), train_dataset=_pairs(),
                            processing_class=word_tokenizer)
    captured = []
    trainer.algorithm.on_rewards = lambda sequences, rewards, keep, prompts: captured.append(
        (sequences, rewards, prompts))
    trainer.train()
    sequences, rewards, prompts = captured[0]
    assert sequences.shape == rewards.shape == (8, 6)
    assert all(prompt in trainer.prompts for prompt in prompts.token_lists())
    assert torch.all((rewards >= 0) & (rewards <= 1))


def test_prompt_evaluator_scores_completions_against_their_own_prompts_references(word_tokenizer, monkeypatch):
    from seqgan_hf.prompt_eval import PromptEvaluator

    pairs = _pairs(8)
    model = tiny_gpt2(**lm_token_ids(word_tokenizer)).eval()
    evaluator = PromptEvaluator(pairs, word_tokenizer, sequence_length=6, num_samples=8, max_order=3)
    references = list(pairs["completion"])
    # Each prompt's own reference: perfect BLEU; the next row's reference (another prompt's): lower.
    monkeypatch.setattr(evaluator, "completions_of", lambda generator, rows: [references[row] for row in rows])
    assert evaluator(model)["bleu3"] == pytest.approx(1.0)
    monkeypatch.setattr(evaluator, "completions_of", lambda generator, rows: [references[(row + 1) % 8] for row in rows])
    shifted = evaluator(model)
    assert shifted["bleu3"] < 0.9
    # NLL: the completion tokens (and EOS) after [BOS, prompt], each row alone.
    total, count = 0.0, 0
    with torch.no_grad():
        for prompt, completion in zip(pairs["prompt"], pairs["completion"]):
            p = word_tokenizer(prompt, add_special_tokens=False)["input_ids"]
            c = word_tokenizer(completion, add_special_tokens=False)["input_ids"][:5] + [word_tokenizer.eos_token_id]
            logits = model(input_ids=torch.tensor([[word_tokenizer.bos_token_id, *p, *c[:-1]]])).logits[0, len(p):]
            total += float(torch.nn.functional.cross_entropy(logits, torch.tensor(c), reduction="sum"))
            count += len(c)
    assert shifted["nll"] == pytest.approx(total / count, rel=1e-5)
    # Real sampling: completions continue each prompt; the same seed gives the same completions.
    first = PromptEvaluator.completions_of(evaluator, model, [0, 1, 2])
    assert first == PromptEvaluator.completions_of(evaluator, model, [0, 1, 2]) and len(first) == 3


def test_scheduled_sampling_refuses_prompt_data(tmp_path, word_tokenizer):
    from seqgan_hf.baselines import ScheduledSamplingTrainer

    with pytest.raises(ValueError, match="ScheduledSamplingTrainer .* does not handle prompt-completion data"):
        ScheduledSamplingTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)), quick_config(tmp_path),
                                 train_dataset=_pairs(), processing_class=word_tokenizer,
                                 discriminator=tiny_gpt2_classifier(num_labels=2,
                                                                    **classifier_token_ids(word_tokenizer)))


def test_a_discriminator_with_its_own_tokenizer_trains_on_text_pairs(tmp_path, word_tokenizer, monkeypatch):
    """A BERT classifier with a WordPiece tokenizer: every discriminator input is its tokenizer's pair encoding of
    the decoded prompt and completion (what that encoding looks like: tests/test_prompts.py)."""
    from tests.builders import tiny_bert_classifier, train_tokenizer

    classifier_tokenizer = train_tokenizer("wordpiece")
    encoded = []
    pair_encoding = classifier_tokenizer.__class__.__call__

    def spy(self, text, text_pair=None, **kwargs):
        result = pair_encoding(self, text, text_pair, **kwargs)
        if self is classifier_tokenizer:
            encoded.append((text_pair is not None, result))
        return result

    monkeypatch.setattr(classifier_tokenizer.__class__, "__call__", spy)
    trainer = SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)),
                            tiny_bert_classifier(num_labels=2, **classifier_token_ids(classifier_tokenizer)),
                            args=quick_config(tmp_path), train_dataset=_pairs(), processing_class=word_tokenizer,
                            discriminator_processing_class=classifier_tokenizer)
    trainer.train()
    # Rounds, rewards and evaluation alike: always (prompt, completion) text pairs, never lone completions.
    assert encoded and all(is_pair for is_pair, _ in encoded)


def test_pairs_longer_than_the_discriminators_max_length_are_refused_or_warned(tmp_path, word_tokenizer, caplog):
    from tests.builders import tiny_bert_classifier, train_tokenizer

    classifier_tokenizer = train_tokenizer("wordpiece")

    def build(**overrides):
        return SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)),
                             tiny_bert_classifier(num_labels=2, **classifier_token_ids(classifier_tokenizer)),
                             args=quick_config(tmp_path, discriminator_max_length=4, **overrides),
                             train_dataset=_pairs(), processing_class=word_tokenizer,
                             discriminator_processing_class=classifier_tokenizer)

    with pytest.raises(ValueError, match=r"training \(prompt, completion\) pairs are longer than the discriminator's "
                                         r"4 tokens .*prompt_overflow='error'\. Raise discriminator_max_length"):
        build(prompt_overflow="error")
    with caplog.at_level("WARNING", logger="seqgan_hf.training_data"):
        build()
    assert "the discriminator reads them cut" in caplog.text


def test_a_saved_pretrained_lm_with_lora_trains_on_prompts_and_its_base_stays_frozen(tmp_path, word_tokenizer):
    """The main use: a pretrained causal LM (saved and loaded by path), a LoRA adapter, prompt-completion data, and
    the KL anchor: the base (adapter disabled) is the reference, so only the adapter moves."""
    from peft import LoraConfig

    base = tiny_gpt2(**lm_token_ids(word_tokenizer))
    base.save_pretrained(tmp_path / "base")
    frozen = {name: value.clone() for name, value in base.state_dict().items()}
    args = quick_config(tmp_path, beta=0.1, mle_epochs=0)
    trainer = SeqGANTrainer(str(tmp_path / "base"),
                            tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(word_tokenizer)),
                            args=args, train_dataset=_pairs(), processing_class=word_tokenizer,
                            peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], lora_dropout=0.0))
    trainer.train()
    adapter = {name: value for name, value in trainer.model.state_dict().items() if "lora_B" in name}
    assert adapter and any(bool(value.abs().sum() > 0) for value in adapter.values())  # lora_B starts at zero
    compared = 0
    for name, value in trainer.model.get_base_model().state_dict().items():
        key = name.replace(".base_layer", "")
        if key in frozen:
            assert torch.equal(value, frozen[key]), name
            compared += 1
    assert compared == len(frozen)  # every base weight, the adapted c_attn layers included
    assert any("adversarial/kl" in entry for entry in trainer.state.log_history)


def test_prompt_settings_without_prompt_data_are_refused(tmp_path, word_tokenizer, text_dataset):
    for field, value in (("max_prompt_length", 8), ("prompt_overflow", "error")):
        with pytest.raises(ValueError, match=f"SeqGANConfig.{field}=.*train_dataset has no prompts"):
            SeqGANTrainer(tiny_gpt2(**lm_token_ids(word_tokenizer)), args=quick_config(tmp_path, **{field: value}),
                          train_dataset=text_dataset, processing_class=word_tokenizer)
