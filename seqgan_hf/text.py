"""Real text: a tokenizer built from the training data, and held-out evaluation of a text generator.

* [`build_tokenizer`]: a word-level tokenizer (the paper's setting: one token per word) or a byte-level BPE one,
  trained with `tokenizers` on the training texts, with `[PAD]`, `[BOS]`, `[EOS]` and `[UNK]`;
* [`TextEvaluator`]: `SeqGANTrainer(evaluator=...)` for text: BLEU-2..4 of fresh samples against held-out
  references, Self-BLEU of the samples, and the generator's held-out NLL and perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from .data import strip_after_eos
from .likelihood import default_bos_token_id, teacher_forced_nll
from .oracle import sample_sequences
from .sampling import SamplingDistribution

TOKENIZER_KINDS = ("word", "bpe")
SPECIAL_TOKENS = {"pad_token": "[PAD]", "bos_token": "[BOS]", "eos_token": "[EOS]", "unk_token": "[UNK]"}


def build_tokenizer(texts: Iterable[str], kind: str = "word", vocab_size: int = 30_000, min_frequency: int = 1):
    """A `PreTrainedTokenizerFast` trained on `texts`: `kind="word"` splits on whitespace and punctuation and keeps
    the `vocab_size` most frequent words seen at least `min_frequency` times (others become `[UNK]`); `"bpe"` is
    byte-level BPE (no unknown tokens). Special tokens: `[PAD]`, `[BOS]`, `[EOS]`, `[UNK]`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"tokenizer kind {kind!r} is not known: choose one of {TOKENIZER_KINDS}.")
    if vocab_size < len(SPECIAL_TOKENS) + 1 or min_frequency < 1:
        raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)} and min_frequency be >= 1, got "
                         f"{vocab_size} and {min_frequency}.")
    specials = list(SPECIAL_TOKENS.values())
    if kind == "word":
        tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=specials)
    else:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


class TextEvaluator:
    """`SeqGANTrainer(evaluator=...)` for text: quality and diversity of fresh samples, and held-out likelihood.

    Metrics (prefixed `eval_` by the trainer): `bleu2` .. `bleu{max_order}` of `num_samples` samples (cut after
    EOS, decoded) against the held-out `references` (each sample against the whole corpus, as text-GAN papers
    report it), `self_bleu` (BLEU-`max_order` of each sample against the others: lower is more diverse), and
    `nll` / `perplexity`: the generator's per-token NLL of the held-out sequences (their EOS included).

    Args:
        references: held-out texts, one per example.
        tokenizer: the generator's tokenizer (encodes the references, decodes the samples).
        sequence_length: T, as training used it (for the NLL, longer held-out lines follow `overflow`).
        bos_token_id: the start token (default: the generator's, as `SeqGANTrainer` picks it).
        num_samples: samples per evaluation, drawn with `seed` (the same at every evaluation: comparable).
        distribution: the sampling distribution (default: the model's own; pass training's).
        overflow: held-out lines longer than T for the NLL, as `SeqGANConfig.sequence_overflow` says ("truncate",
            "drop" or "error"); BLEU always uses the whole references.
        append_eos: as `SeqGANConfig.append_eos`: False for fixed-length data (no EOS: every held-out line must
            have exactly T tokens, all of them scored, and samples are never cut).
    """

    def __init__(self, references: Sequence[str], tokenizer, sequence_length: int, bos_token_id: int | None = None,
                 num_samples: int = 500, max_order: int = 4, seed: int = 1234,
                 distribution: SamplingDistribution | None = None, self_bleu_samples: int = 200,
                 overflow: str = "truncate", append_eos: bool = True):
        from .data import encode_dataset
        from .metrics import BleuReferences

        if not references:
            raise ValueError("TextEvaluator needs held-out references: the held-out text is empty.")
        import datasets

        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.bos_token_id = bos_token_id
        self.num_samples = num_samples
        self.max_order = max_order
        self.seed = seed
        self.distribution = distribution or SamplingDistribution()
        self.self_bleu_samples = self_bleu_samples
        self.eos_token_id = tokenizer.eos_token_id if append_eos else None
        # Samples are decoded by the tokenizer; references go through it too, so both sides of BLEU are split into
        # the same words (a word-level tokenizer decodes "o'er," as "o ' er ,").
        normalized = tokenized_texts(references, tokenizer)
        self.references = {n: BleuReferences(normalized, n) for n in range(2, max_order + 1)}
        held_out = encode_dataset(datasets.Dataset.from_dict({"text": list(references)}),
                                  sequence_length=sequence_length, tokenizer=tokenizer,
                                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                                  vocab_size=len(tokenizer), overflow=overflow, what="held-out text",
                                  fixed_length=not append_eos)
        self.held_out = held_out.input_ids
        positions = torch.arange(sequence_length).unsqueeze(0)
        # Tokens up to and including each sequence's EOS (if any) are scored; padding after it is not.
        self.held_out_mask = positions < held_out.lengths.unsqueeze(1)

    def __call__(self, generator: torch.nn.Module) -> dict[str, float]:
        from .metrics import corpus_bleu, self_bleu

        distribution = self.distribution
        bos = self.bos_token_id if self.bos_token_id is not None else default_bos_token_id(generator)
        samples = sample_sequences(generator, self.num_samples, self.sequence_length, bos,
                                   seed=self.seed, temperature=distribution.temperature, top_k=distribution.top_k,
                                   top_p=distribution.top_p)
        tokens = strip_after_eos(samples, self.eos_token_id, self.tokenizer.pad_token_id)
        texts = [self.tokenizer.decode(row, skip_special_tokens=True) for row in tokens]
        metrics = {f"bleu{n}": corpus_bleu(texts, table, n) for n, table in self.references.items()}
        if len(texts) > 1:
            metrics["self_bleu"] = self_bleu(texts[: self.self_bleu_samples], self.max_order)
        device = next(generator.parameters()).device
        nll = teacher_forced_nll(generator, self.held_out.to(device), bos,
                                 mask=self.held_out_mask.to(device)).nll
        metrics.update(nll=nll, perplexity=math.exp(min(nll, 50.0)))
        return metrics


def held_out_split(dataset, percentage: float, seed: int):
    """(train, held-out): `percentage` % of `dataset`'s rows, drawn with `seed`, held out (as run_clm's
    `validation_split_percentage` does); at least one row on each side."""
    if not 0 < percentage < 100:
        raise ValueError(f"validation_split_percentage must be in (0, 100), got {percentage}.")
    if len(dataset) < 2:
        raise ValueError(f"the training file has {len(dataset)} example(s): too few to hold some out. Pass "
                         "--eval_file, or set --validation_split_percentage 0.")
    held_out = min(len(dataset) - 1, max(1, round(len(dataset) * percentage / 100)))
    split = dataset.train_test_split(test_size=held_out, seed=seed, shuffle=True)
    return split["train"], split["test"]


def texts_of(dataset, tokenizer) -> list[str]:
    """The examples of `dataset` as texts: its `text` column, or its `input_ids` decoded with `tokenizer`."""
    if "text" in dataset.column_names:
        return [text for text in dataset["text"] if text.strip()]
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids in dataset["input_ids"]]


def tokenized_texts(texts: Iterable[str], tokenizer) -> list[str]:
    """`texts` as the tokenizer decodes them (encoded, then decoded without special tokens): the form generated
    samples take, so that BLEU compares like with like."""
    return [tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
            for text in texts]

