"""Checks of what a user passes to `SeqGANTrainer`, raised before any work with the argument and the fix."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import re

import torch
from torch import nn

logger = logging.getLogger("seqgan_hf.trainer")


def check_models(model, discriminator, processing_class, discriminator_processing_class) -> None:
    """Refuse models and tokenizers that cannot work together, before any work."""
    from transformers import GenerationMixin

    if not (isinstance(model, GenerationMixin) or callable(getattr(model, "generate", None))):
        raise TypeError(
            f"model is a {type(model).__name__}, not a causal LM: pass a generator built with "
            "AutoModelForCausalLM (e.g. GPT2LMHeadModel, LlamaForCausalLM, LSTMForCausalLM)."
        )
    if processing_class is not None and getattr(processing_class, "pad_token", "") is None:
        raise ValueError(
            "processing_class has no pad token, which SeqGAN needs to batch sequences of different lengths. "
            "Set one first, e.g. `tokenizer.pad_token = tokenizer.eos_token`."
        )
    if discriminator is None:
        if discriminator_processing_class is not None:
            raise ValueError("discriminator_processing_class is set but there is no discriminator: pass "
                             "discriminator=... or drop discriminator_processing_class.")
        return
    num_labels = getattr(discriminator.config, "num_labels", None)
    if num_labels not in (1, 2):
        raise ValueError(
            f"discriminator.config.num_labels is {num_labels}; SeqGAN needs 1 (sigmoid) or 2 (softmax, label 1 = "
            "real). Rebuild it with AutoModelForSequenceClassification.from_config(config, num_labels=2)."
        )
    if discriminator_processing_class is not None:
        if processing_class is None:
            raise ValueError(
                "discriminator_processing_class is set but processing_class is not: the generator's tokenizer "
                "is needed to decode its samples for the discriminator."
            )
        if getattr(discriminator_processing_class, "pad_token", "") is None:
            raise ValueError(
                "discriminator_processing_class has no pad token; set one, e.g. `tok.pad_token = tok.eos_token`."
            )
        return
    g_vocab = model.get_input_embeddings().num_embeddings
    d_embeddings = discriminator.get_input_embeddings() if hasattr(discriminator, "get_input_embeddings") else None
    d_vocab = d_embeddings.num_embeddings if d_embeddings is not None else discriminator.config.vocab_size
    if d_vocab != g_vocab:
        raise ValueError(
            f"The generator has {g_vocab} token ids but the discriminator {d_vocab}, and no "
            "discriminator_processing_class was given, so D would read G's ids directly. Build D with "
            f"vocab_size={g_vocab}, or pass discriminator_processing_class=<D's tokenizer> to re-tokenize text."
        )


def share_pad_token(model, discriminator, processing_class, discriminator_processing_class) -> None:
    """A classifier reading the generator's tokens without a pad id of its own gets the generator's: decoder
    classifiers (GPT-2, Llama, ...) find the last real token by it, and Hub checkpoints often have none."""
    if discriminator is None or discriminator_processing_class is not None:
        return
    config = discriminator.config
    if getattr(config, "pad_token_id", None) is not None:
        return
    pad = getattr(processing_class, "pad_token_id", None) if processing_class is not None else None
    pad = pad if pad is not None else getattr(model.config, "pad_token_id", None)
    if pad is not None:
        logger.info("The discriminator's config has no pad_token_id: using the generator's (%d).", pad)
        config.pad_token_id = pad


def check_phases(args, discriminator, reward, reward_funcs, discriminator_reward) -> None:
    """Every configured phase has what it needs, and nothing given goes unused."""
    trains_discriminator = args.discriminator_pretrain_rounds > 0 or (args.adversarial_iterations > 0
                                                                      and args.d_steps > 0)
    if discriminator is None and trains_discriminator:
        raise ValueError(
            f"There is no discriminator, but discriminator_pretrain_rounds={args.discriminator_pretrain_rounds} "
            f"and d_steps={args.d_steps} train one: pass discriminator=..., or set both to 0 (rewards from "
            "reward_funcs alone)."
        )
    if reward is None and args.adversarial_iterations > 0 and args.g_steps > 0:
        raise ValueError("The adversarial phase needs a reward: pass a discriminator or reward_funcs=..., or set "
                         "adversarial_iterations=0.")
    if (discriminator is not None and reward_funcs is not None
            and discriminator_reward is not reward
            and discriminator_reward not in getattr(reward, "sources", [])):
        raise ValueError(
            "A discriminator is trained, but reward_funcs does not use it: add 'discriminator' to reward_funcs "
            "(mixed by reward_weights), or pass discriminator=None and set discriminator_pretrain_rounds=0 and "
            "d_steps=0."
        )
    if args.reward_weights is not None and reward_funcs is None:
        raise ValueError("reward_weights is set but reward_funcs is not: weights mix several reward_funcs.")


def special_token_ids(model, processing_class, args) -> tuple[int, int | None, int | None]:
    """The start token, EOS (ends a sequence early) and padding ids, from the config, model and tokenizer."""
    generation_config = getattr(model, "generation_config", None)
    bos_token_id = _first_not_none(
        args.bos_token_id,
        getattr(model.config, "bos_token_id", None),
        getattr(processing_class, "bos_token_id", None),
        getattr(generation_config, "bos_token_id", None),
        getattr(processing_class, "eos_token_id", None),
    )
    if bos_token_id is None:
        raise ValueError(
            "No start token: neither the generator config nor the tokenizer defines bos_token_id. "
            "Set SeqGANConfig(bos_token_id=...)."
        )
    eos_token_id = _first_not_none(
        getattr(processing_class, "eos_token_id", None) if processing_class is not None else None,
        getattr(model.config, "eos_token_id", None),
    )
    pad_token_id = _first_not_none(
        getattr(processing_class, "pad_token_id", None) if processing_class is not None else None,
        getattr(model.config, "pad_token_id", None),
    )
    if isinstance(eos_token_id, list):
        eos_token_id = eos_token_id[0]
    return bos_token_id, eos_token_id, pad_token_id


def _first_not_none(*values):
    for value in values:
        if value is not None:
            return value
    return None


@torch.no_grad()
def probe_models(model, discriminator, processing_class) -> None:
    """Refuse a generator that sees the future or a discriminator that does not classify whole sequences, by
    running them on a short probe (duck typing lets a BERT with an LM head or a causal LM through).

    The models run in eval mode (no dropout, so no random numbers are drawn) and are put back as they were."""
    if getattr(model.config, "is_encoder_decoder", False):
        raise TypeError(
            f"model is a {type(model).__name__}, an encoder-decoder (seq2seq) model: SeqGAN's generator must be a "
            "decoder-only causal LM (AutoModelForCausalLM, e.g. GPT2LMHeadModel, LlamaForCausalLM)."
        )
    vocab_size = model.get_input_embeddings().num_embeddings
    if processing_class is not None and len(processing_class) > vocab_size:
        raise ValueError(
            f"processing_class has {len(processing_class)} tokens but the generator's embedding only {vocab_size}: "
            "ids past it would crash training. Call model.resize_token_embeddings(len(tokenizer)) first."
        )
    probe = (torch.arange(6) * 7 + 1) % max(vocab_size, 1)
    changed = probe.clone()
    changed[4:] = (changed[4:] + 1) % max(vocab_size, 1)
    with _eval_mode(model):
        device = next(model.parameters()).device
        logits = model(input_ids=torch.stack([probe, changed]).to(device)).logits.float()
    # Positions 0..3 saw the same tokens in both rows; a causal model gives them the same logits.
    if logits.ndim != 3 or not torch.allclose(logits[0, :4], logits[1, :4], rtol=1e-4, atol=1e-4):
        raise TypeError(
            f"model ({type(model).__name__}) is not causal: its outputs at a position depend on later tokens "
            f"(e.g. a bidirectional encoder such as BERT with an LM head, or is_decoder=False). Pass a causal LM "
            "(AutoModelForCausalLM with a decoder-only architecture, or a BERT built with is_decoder=True)."
        )
    if discriminator is None:
        return
    d_vocab = discriminator.get_input_embeddings().num_embeddings if hasattr(discriminator, "get_input_embeddings") \
        else discriminator.config.vocab_size
    rows = torch.stack([probe, changed]) % max(d_vocab, 1)
    with _eval_mode(discriminator):
        device = next(discriminator.parameters()).device
        logits = discriminator(input_ids=rows.to(device), attention_mask=torch.ones_like(rows).to(device)).logits
    expected = (2, discriminator.config.num_labels)
    if tuple(logits.shape) != expected:
        raise TypeError(
            f"discriminator ({type(discriminator).__name__}) returns logits of shape {tuple(logits.shape)} for 2 "
            f"sequences, not one row of num_labels per sequence {expected}: pass a sequence classifier "
            "(AutoModelForSequenceClassification with num_labels 1 or 2), not a language model."
        )


@contextlib.contextmanager
def _eval_mode(module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def load_model(model_or_path, auto_class, what: str, init_kwargs: dict | None = None):
    """`model_or_path` itself, or loaded with `auto_class.from_pretrained(path, **init_kwargs)` in float32 unless
    `init_kwargs` names a dtype (transformers 5 would otherwise keep the checkpoint's dtype, e.g. bf16, and train
    in it). A missing local path is named as such."""
    if init_kwargs and not isinstance(model_or_path, str | os.PathLike):
        raise ValueError(f"{what}_init_kwargs only apply when {what} is a path or Hub id, but {what} is a "
                         f"{type(model_or_path).__name__} object: load it yourself with those arguments, or pass "
                         "its path.")
    if isinstance(model_or_path, str | os.PathLike):
        path = os.fspath(model_or_path)
        if not os.path.exists(os.path.expanduser(path)) and looks_local(path):
            raise FileNotFoundError(f"{what}={path!r} does not exist: pass a folder written by save_pretrained "
                                    "(check the path), or a Hub id such as 'owner/name'.")
        return from_pretrained(auto_class, path, init_kwargs, what)
    if not isinstance(model_or_path, nn.Module):
        raise TypeError(f"{what} must be a PreTrainedModel or a path / Hub id, got {type(model_or_path).__name__}.")
    return model_or_path


def from_pretrained(auto_class, path: str, init_kwargs: dict | None = None, what: str = "model"):
    """`auto_class.from_pretrained(path, **init_kwargs)`, in float32 unless `init_kwargs` names a `dtype`."""
    kwargs = dict(init_kwargs or {})
    if "torch_dtype" in kwargs:
        raise ValueError(f"{what}_init_kwargs: use 'dtype' (transformers 5), not 'torch_dtype'.")
    kwargs.setdefault("dtype", torch.float32)
    return auto_class.from_pretrained(path, **kwargs)


# A Hub id is `name` or `owner/name`; anything else with a separator is a local path.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def looks_local(value: str) -> bool:
    """Whether `value` names a local path rather than a Hub id: it exists, starts like a path (`.`, `/`, `~`),
    is not of the `name` / `owner/name` form, or its first part is a local folder (`outputs/run`)."""
    if os.path.exists(os.path.expanduser(value)) or value.startswith((".", "/", "~")):
        return True
    if any(sep and sep != "/" and sep in value for sep in (os.sep, os.altsep)):
        return True
    if "/" not in value:
        return False  # a bare name such as gpt2: a Hub id
    return not _HUB_ID.fullmatch(value) or os.path.isdir(value.split("/")[0])


def apply_peft(model, peft_config):
    """`model` with a fresh peft adapter from `peft_config` (only the adapter trains), refused with a fix when
    peft is missing or the model carries an adapter already."""
    try:
        import peft
    except ImportError as error:
        raise ImportError("peft_config needs the peft package: pip install 'seqgan-hf[peft]'.") from error
    if not isinstance(peft_config, peft.PeftConfig):
        raise TypeError(f"peft_config must be a peft.PeftConfig (e.g. peft.LoraConfig(...)), got "
                        f"{type(peft_config).__name__}.")
    if isinstance(model, peft.PeftModel):
        raise ValueError("model is already a PeftModel, and peft_config asks for another adapter: pass the "
                         "PeftModel without peft_config, or the base model with peft_config.")
    if peft_config.task_type not in (None, "CAUSAL_LM", peft.TaskType.CAUSAL_LM):
        raise ValueError(f"peft_config.task_type is {peft_config.task_type!r}; the generator is a causal LM: use "
                         "task_type='CAUSAL_LM' (or leave it unset).")
    if peft_config.task_type is None:
        peft_config = copy.copy(peft_config)  # the user's object stays as given
        peft_config.task_type = peft.TaskType.CAUSAL_LM
    return peft.get_peft_model(model, peft_config)


def enable_activation_checkpointing(model, kwargs: dict | None) -> None:
    """The Trainer's `activation_checkpointing` (alias `gradient_checkpointing`) on the generator, refused with a
    fix for a model that does not support it (e.g. the paper's LSTM)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ValueError(
            f"SeqGANConfig.gradient_checkpointing: {type(model).__name__} does not support activation "
            "checkpointing. Turn it off, or lower per_device_train_batch_size (with gradient_accumulation_steps "
            "to keep the batch) to save memory."
        )
    kwargs = dict(kwargs or {})
    # Without reentrant checkpointing the frozen inputs of a peft model need no requires_grad trick.
    kwargs.setdefault("use_reentrant", False)
    every_n_layers = kwargs.pop("every_n_layers", 1)
    offload = kwargs.pop("offload", False)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs, every_n_layers=every_n_layers,
                                          offload=offload)
