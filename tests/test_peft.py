"""LoRA generators (peft): adapter-only training, rollout and reference policies without a model copy, adapter
checkpoints and saves that load back with AutoPeftModelForCausalLM, on GPT-2, Llama and Qwen2-style models
saved in bfloat16 and given as paths."""

from __future__ import annotations

import datasets
import pytest
import torch
from peft import AutoPeftModelForCausalLM, LoraConfig

from seqgan_hf import SeqGANTrainer
from seqgan_hf.policies import AdapterDisabled, AdapterWeights
from tests.builders import (
    classifier_token_ids,
    lm_token_ids,
    quick_config,
    stop_at,
    tiny_bert_classifier,
    tiny_gpt2,
    tiny_gpt2_classifier,
    tiny_llama,
    tiny_qwen2,
    train_tokenizer,
)

TARGETS = {"gpt2": ["c_attn"], "llama": ["q_proj", "v_proj"], "qwen2": ["q_proj", "v_proj"]}
BUILDERS = {"gpt2": tiny_gpt2, "llama": tiny_llama, "qwen2": tiny_qwen2}


@pytest.fixture(scope="module")
def bf16_generators(tmp_path_factory):
    """Tiny GPT-2, Llama and Qwen2 generators (and the tokenizer) saved in bfloat16, as a Hub checkpoint would be."""
    root = tmp_path_factory.mktemp("lora_bases")
    tokenizer = train_tokenizer()
    for name, build in BUILDERS.items():
        build(**lm_token_ids(tokenizer)).to(torch.bfloat16).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return root, tokenizer


def _lora(kind: str) -> LoraConfig:
    return LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS[kind], lora_dropout=0.0)


def _base_weights(model) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters() if "lora_" not in name}


@pytest.mark.slow
@pytest.mark.parametrize("kind, classifier", [("gpt2", "bert"), ("llama", "gpt2"), ("qwen2", "gpt2")])
def test_lora_trains_the_adapter_only_saves_it_and_it_loads_back(tmp_path, bf16_generators, text_dataset, kind,
                                                                  classifier):
    root, tokenizer = bf16_generators
    build_classifier = tiny_bert_classifier if classifier == "bert" else tiny_gpt2_classifier
    discriminator = build_classifier(num_labels=2, **classifier_token_ids(tokenizer))
    args = quick_config(tmp_path, sequence_length=8, rollout_policy="delayed", beta=0.1, learning_rate=0.05,
                        gradient_accumulation_steps=2, per_device_train_batch_size=4, gradient_checkpointing=True)
    trainer = SeqGANTrainer(str(root / kind), discriminator, args, train_dataset=text_dataset,
                            processing_class=tokenizer, peft_config=_lora(kind))
    base_before = _base_weights(trainer.model)
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert lora_before and all("lora_" in name for name in lora_before)
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}  # bf16 on disk, fp32 to train
    trainer.train()

    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(value, after[name]) for name, value in base_before.items())  # the base is frozen
    assert any(not torch.equal(value, after[name]) for name, value in lora_before.items())
    # The delayed rollout policy is the adapter alone; the reference is the base (adapter disabled): no copies.
    assert isinstance(trainer.algorithm.rollout_model, AdapterWeights)
    assert set(trainer.algorithm.rollout_model.state_dict()) == set(lora_before)
    assert isinstance(trainer.algorithm.reference_model, AdapterDisabled)
    assert any("adversarial/kl" in entry for entry in trainer.state.log_history)

    trainer.save_model()
    trainer.create_model_card()
    out = tmp_path / "out"
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    assert (out / "discriminator" / "model.safetensors").is_file()
    card = (out / "README.md").read_text()
    assert "LORA adapter (peft) on the base model" in card and str(root / kind) in card
    assert "AutoPeftModelForCausalLM.from_pretrained" in card

    reloaded = AutoPeftModelForCausalLM.from_pretrained(out).eval()
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[name]), name
    prompt = torch.full((2, 1), tokenizer.bos_token_id)
    generated = reloaded.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                                  max_new_tokens=5, top_k=0, pad_token_id=tokenizer.pad_token_id)
    assert generated.shape == (2, 6)


def _kl_to_base(trainer, sequences) -> float:
    """Mean per-token KL(G || base) on fixed sequences, exact over the vocabulary."""
    model = trainer.model.eval()
    inputs = torch.cat([torch.full((sequences.shape[0], 1), trainer.bos_token_id), sequences[:, :-1]], 1)
    with torch.no_grad():
        policy = torch.log_softmax(model(input_ids=inputs).logits, -1)
        with model.disable_adapter():
            base = torch.log_softmax(model(input_ids=inputs).logits, -1)
    return float((policy.exp() * (policy - base)).sum(-1).mean())


@pytest.mark.slow
def test_a_large_beta_keeps_the_lora_policy_near_the_base(tmp_path, bf16_generators, text_dataset):
    root, tokenizer = bf16_generators
    sequences = torch.randint(4, len(tokenizer), (16, 8), generator=torch.Generator().manual_seed(0))
    kls = {}
    for beta in (0.0, 20.0):
        args = quick_config(tmp_path / str(beta), sequence_length=8, mle_epochs=0, beta=beta, learning_rate=0.05,
                            adversarial_iterations=4)
        trainer = SeqGANTrainer(str(root / "gpt2"), tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(
            tokenizer)), args, train_dataset=text_dataset, processing_class=tokenizer, peft_config=_lora("gpt2"))
        trainer.train()
        kls[beta] = _kl_to_base(trainer, sequences)
    assert kls[20.0] < 0.5 * kls[0.0], kls


@pytest.mark.slow
def test_lora_resume_ends_identical_to_an_uninterrupted_run(tmp_path, bf16_generators):
    root, tokenizer = bf16_generators
    data = datasets.Dataset.from_dict({"input_ids": [[5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5]] * 8})

    def run(folder, callbacks=(), **overrides):
        trainer = SeqGANTrainer(
            str(root / "llama"), tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
            quick_config(folder, sequence_length=8, rollout_policy="delayed", beta=0.5, adversarial_iterations=3,
                         save_strategy="steps", save_steps=1, learning_rate=0.05, **overrides),
            train_dataset=data, processing_class=tokenizer, callbacks=list(callbacks), peft_config=_lora("llama"))
        trainer.train()
        return trainer

    whole = run(tmp_path / "whole")
    run(tmp_path / "split", [stop_at(4)])  # after the first adversarial iteration
    checkpoint = tmp_path / "split" / "out" / "checkpoint-4"
    assert (checkpoint / "adapter_model.safetensors").is_file() and not (checkpoint / "model.safetensors").exists()
    resumed = run(tmp_path / "split", resume_from_checkpoint="latest")
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for name, value in whole.algorithm.rollout_model.state_dict().items():
        assert torch.equal(value, resumed.algorithm.rollout_model.state_dict()[name]), name


def test_peft_config_is_checked(tmp_path, text_dataset):
    tokenizer = train_tokenizer()

    def build(peft_config, model=None):
        return SeqGANTrainer(model or tiny_gpt2(**lm_token_ids(tokenizer)),
                             tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
                             quick_config(tmp_path), train_dataset=text_dataset, processing_class=tokenizer,
                             peft_config=peft_config)

    with pytest.raises(TypeError, match="peft_config must be a peft.PeftConfig"):
        build({"r": 4})
    with pytest.raises(ValueError, match="task_type is 'SEQ_CLS'"):
        build(LoraConfig(target_modules=["c_attn"], task_type="SEQ_CLS"))
    from peft import get_peft_model

    wrapped = get_peft_model(tiny_gpt2(**lm_token_ids(tokenizer)), _lora("gpt2"))
    with pytest.raises(ValueError, match="already a PeftModel"):
        build(_lora("gpt2"), model=wrapped)
    with pytest.raises(ValueError, match="overwrite_generation_config: a peft generator saves its adapter only"):
        SeqGANTrainer(tiny_gpt2(**lm_token_ids(tokenizer)),
                      tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
                      quick_config(tmp_path, overwrite_generation_config=True), train_dataset=text_dataset,
                      processing_class=tokenizer, peft_config=_lora("gpt2"))


def test_the_rollout_adapter_is_swapped_in_while_it_acts_and_the_generator_is_restored():
    from peft import get_peft_model

    from seqgan_hf.policies import acting_as, move_towards

    tokenizer = train_tokenizer()
    generator = get_peft_model(tiny_gpt2(**lm_token_ids(tokenizer)), _lora("gpt2")).eval()
    inputs = torch.randint(4, len(tokenizer), (2, 5), generator=torch.Generator().manual_seed(0))
    snapshot = AdapterWeights(generator)
    with torch.no_grad():
        for name, param in generator.named_parameters():
            if "lora_B" in name:
                param.add_(0.5)  # the generator moves on; the snapshot stays where it was taken
        own = generator(input_ids=inputs).logits
        with acting_as(snapshot, generator) as policy:
            assert policy is generator
            snapshot_logits = policy(input_ids=inputs).logits
        with generator.disable_adapter():
            base = generator(input_ids=inputs).logits
        assert torch.allclose(snapshot_logits, base, atol=1e-6)  # LoRA starts with B = 0: the base model
        assert not torch.allclose(own, base, atol=1e-3)
        assert torch.equal(generator(input_ids=inputs).logits, own)  # own weights back in place
        move_towards(snapshot, generator, rate=0.0)  # rate 0: the snapshot becomes the generator
        with acting_as(snapshot, generator) as policy:
            assert torch.equal(policy(input_ids=inputs).logits, own)
