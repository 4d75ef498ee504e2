"""The trainer's real data: plain sequences or prompt-completion pairs, encoded once, and what MLE reads of them.

A dataset with `prompt` and `completion` columns (TRL's standard or conversational format: `seqgan_hf.prompt_data`)
makes the run prompt-conditioned; any other dataset (`input_ids` or `text`) is plain sequences, each started from
the start token alone. Held-out data must have the training data's kind: the generator's held-out NLL is of
completions given their prompts when it trained on prompts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import datasets

from .data import MLECollator, RealSequences, encode_dataset, strip_after_eos
from .prompt_data import PromptMLECollator, encode_prompt_dataset, is_prompt_dataset, prompt_mle_dataset

logger = logging.getLogger(__name__)


@dataclass
class TrainingData:
    """What the trainer keeps of its training set.

    `real`: the real sequences, or with prompts the real completions; `prompts`: row i's prompt tokens (None
    without prompts); `prompt_width`: the most prompt tokens any pair holds (`max_prompt_length`, else the longest
    training prompt; 0 without prompts); `mle_dataset` / `collator`: teacher-forcing batches (with prompts, the
    loss covers completion tokens only); `prompt_overflow`: what held-out prompts wider than `prompt_width` get.
    """

    real: RealSequences
    prompts: list[list[int]] | None
    prompt_width: int
    mle_dataset: datasets.Dataset
    collator: MLECollator | PromptMLECollator
    prompt_overflow: str = "truncate"


def encode_training_data(dataset, encoding: dict, args, bos_token_id: int) -> TrainingData:
    """Encode `train_dataset` with `encoding` (`encode_dataset`'s keyword arguments) and the config's prompt
    settings."""
    eos, pad = encoding["eos_token_id"], encoding["pad_token_id"]
    if not _has_prompts(dataset):
        for name, default in (("max_prompt_length", None), ("prompt_overflow", "truncate")):
            if getattr(args, name) != default:
                raise ValueError(
                    f"SeqGANConfig.{name}={getattr(args, name)!r}, but train_dataset has no prompts (no 'prompt' and "
                    "'completion' columns), so it would do nothing. Drop it, or pass prompt-completion pairs."
                )
        real = encode_dataset(dataset, **encoding)
        return TrainingData(real, None, 0, sequence_dataset(real), MLECollator(bos_token_id, eos, pad))
    pairs = encode_prompt_dataset(dataset, **encoding, max_prompt_length=args.max_prompt_length,
                                  prompt_overflow=args.prompt_overflow)
    width = args.max_prompt_length if args.max_prompt_length is not None else max(map(len, pairs.prompts))
    return TrainingData(pairs.completions, pairs.prompts, width, prompt_mle_dataset(pairs),
                        PromptMLECollator(bos_token_id, eos, pad), args.prompt_overflow)


def encode_held_out(dataset, encoding: dict, data: TrainingData, what: str) -> datasets.Dataset:
    """Held-out data as the MLE collator's rows, encoded as the training data was (refused if of another kind)."""
    with_prompts = _has_prompts(dataset)
    if with_prompts != (data.prompts is not None):
        trained = "prompt-completion pairs" if data.prompts is not None else "plain sequences"
        given = "prompt-completion pairs" if with_prompts else "plain sequences"
        raise ValueError(
            f"{what} holds {given} but train_dataset holds {trained}: held-out data must be of the same kind (both "
            "with 'prompt' and 'completion' columns, or both 'input_ids' / 'text')."
        )
    if not with_prompts:
        return sequence_dataset(encode_dataset(dataset, **encoding, what=what))
    # Held-out prompts get the training prompts' width, so every pair fits the models; wider ones follow
    # prompt_overflow.
    return prompt_mle_dataset(encode_prompt_dataset(dataset, **encoding, what=what, max_prompt_length=data.prompt_width,
                                                    prompt_overflow=data.prompt_overflow))


def check_positions(model, discriminator, data: TrainingData, sequence_length: int, same_vocabulary: bool) -> None:
    """Refuse, before any work, a generator (or same-vocabulary discriminator) whose position embeddings cannot
    hold the start token + the widest prompt + sequence_length (the pair width, for the discriminator)."""
    needs = [("model", model, 1 + data.prompt_width + sequence_length)]
    if discriminator is not None and same_vocabulary:
        needs.append(("discriminator", discriminator, data.prompt_width + sequence_length))
    for name, module, needed in needs:
        config = getattr(module, "config", None)
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if isinstance(limit, int) and needed > limit:
            prompts = (f" + {data.prompt_width} prompt tokens (max_prompt_length, or the longest training prompt)"
                       if data.prompts is not None else "")
            raise ValueError(
                f"{name} has {limit} positions but its inputs need {needed}: sequence_length={sequence_length}"
                f"{prompts}{' + the start token' if name == 'model' else ''}. Lower sequence_length"
                f"{' or max_prompt_length' if data.prompts is not None else ''}, or use a model with more positions."
            )


def check_pair_lengths(adapter, data: TrainingData) -> None:
    """A discriminator with its own tokenizer reads (prompt, completion) text pairs cut to `discriminator_max_length`
    tokens: training pairs longer than that are refused with `prompt_overflow='error'`, else warned about, before
    any work (a generated completion may still reach it: then `DiscriminatorAdapter` warns once)."""
    if adapter is None or not adapter.retokenize or data.prompts is None:
        return
    decode = adapter.generator_tokenizer.batch_decode
    prompts = decode(data.prompts, skip_special_tokens=True)
    completions = decode(strip_after_eos(data.real.input_ids, adapter.eos_token_id, adapter.pad_token_id),
                         skip_special_tokens=True)
    lengths = [len(ids) for ids in adapter.discriminator_tokenizer(prompts, completions)["input_ids"]]
    long = [length for length in lengths if length > adapter.max_length]
    if not long:
        return
    message = (f"{len(long)} of {len(lengths)} training (prompt, completion) pairs are longer than the "
               f"discriminator's {adapter.max_length} tokens (discriminator_max_length; the longest has "
               f"{max(long)})")
    if data.prompt_overflow == "error":
        raise ValueError(f"train_dataset: {message} and prompt_overflow='error'. Raise discriminator_max_length to "
                         f"{max(long)}, or lower max_prompt_length / sequence_length.")
    logger.warning("train_dataset: %s: the discriminator reads them cut (the longer text loses its end first). "
                   "Raise discriminator_max_length to %d to keep them whole, or set prompt_overflow='error' to "
                   "refuse such data.", message, max(long))


def sequence_dataset(real: RealSequences) -> datasets.Dataset:
    """Encoded sequences as the MLE collator's rows."""
    return datasets.Dataset.from_dict({"input_ids": real.input_ids.tolist(), "length": real.lengths.tolist()})


def _has_prompts(dataset) -> bool:
    return dataset is not None and not isinstance(dataset, dict) and is_prompt_dataset(dataset)
