"""Checks of what a user passes to `SeqGANTrainer`, raised before any work with the argument and the fix."""

from __future__ import annotations

from transformers import GenerationMixin


def check_models(model, discriminator, processing_class, discriminator_processing_class) -> None:
    """Refuse models and tokenizers that cannot work together, before any work."""
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
