"""BLEU against a shared reference corpus, Self-BLEU and per-sample BLEU rewards (pure Python).

Conventions (identical to `nltk.translate.bleu_score.sentence_bleu` with
`smoothing_function=SmoothingFunction().method1`, which is what the Texygen benchmark uses):

* n-gram orders 1..`max_order`, uniform weights `1 / max_order`;
* clipped ("modified") precision against a multi-reference set: a hypothesis n-gram counts at most as
  often as it occurs in the single reference that contains it most often;
* precision denominators are `max(1, number of hypothesis n-grams)`;
* brevity penalty against the *closest* reference length (ties go to the shorter reference);
* smoothing: nltk's method 1, i.e. an order whose clipped count is 0 gets precision
  `epsilon / denominator` (`epsilon = 0.1` by default; `smoothing=0` disables it and any zero
  precision then gives BLEU 0);
* a hypothesis without a single matching unigram scores exactly 0 (smoothing does not apply).

The reference set is reduced once to a table "n-gram -> its maximum count over all references"
(plus the set of reference lengths); scoring a hypothesis is then O(len(hypothesis) * max_order).
"""

from __future__ import annotations

import math
import numbers
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: One token sequence: a list of int token ids, a list of str tokens, or a text (split on whitespace).
TokenSequence = Sequence[int] | Sequence[str] | str
NGram = tuple

#: Epsilon of nltk's `SmoothingFunction().method1` (its default).
DEFAULT_SMOOTHING = 0.1


# ---- input handling ------------------------------------------------------------------------------------


def _token_kind(token_type: type) -> str | None:
    if issubclass(token_type, str):
        return "str"
    if issubclass(token_type, numbers.Integral) and not issubclass(token_type, bool):
        return "int"
    return None


def _as_sequences(name: str, sequences: Iterable[TokenSequence]) -> tuple[list[tuple], str | None]:
    """Normalise `sequences` to a list of token tuples and report the token kind ("int", "str" or None).

    Strings are split on whitespace; arrays and tensors (anything with `.tolist()`) are converted.
    Raises ValueError for a bare string, non-int/str tokens, or int and str tokens mixed together."""
    if hasattr(sequences, "tolist"):  # a 2-D numpy array or torch tensor
        sequences = sequences.tolist()
    if isinstance(sequences, str):
        raise ValueError(f"{name} must be a list of token sequences or texts, not a single string.")
    if not isinstance(sequences, Iterable):
        raise ValueError(f"{name} must be a list of token sequences or texts, got {type(sequences).__name__}.")
    result: list[tuple] = []
    kind: str | None = None
    for index, sequence in enumerate(sequences):
        if isinstance(sequence, str):
            tokens = tuple(sequence.split())
        else:
            if hasattr(sequence, "tolist"):
                sequence = sequence.tolist()
            if not isinstance(sequence, Iterable):
                raise ValueError(
                    f"{name}[{index}] is a {type(sequence).__name__}; expected a token sequence "
                    "(a list of ints or of str tokens) or a text string."
                )
            tokens = tuple(sequence)
        for token_type in set(map(type, tokens)):
            token_kind = _token_kind(token_type)
            if token_kind is None:
                raise ValueError(f"{name}[{index}] contains a {token_type.__name__} token; tokens must be ints or strings.")
            if kind is None:
                kind = token_kind
            elif kind != token_kind:
                raise ValueError(f"{name} mixes int token ids and str tokens (first seen at {name}[{index}]).")
        result.append(tokens)
    return result, kind


def _check_kinds(hypothesis_kind: str | None, reference_kind: str | None, what: str = "references") -> None:
    if hypothesis_kind and reference_kind and hypothesis_kind != reference_kind:
        raise ValueError(
            f"hypotheses are {hypothesis_kind} tokens but {what} are {reference_kind} tokens; "
            "score token ids against token ids and texts against texts."
        )


def _check_options(max_order: int, smoothing: float) -> None:
    if not isinstance(max_order, numbers.Integral) or isinstance(max_order, bool) or max_order < 1:
        raise ValueError(f"max_order must be a positive int, got {max_order!r}.")
    if not isinstance(smoothing, numbers.Real) or not smoothing >= 0:
        raise ValueError(f"smoothing (nltk method1's epsilon) must be a number >= 0, got {smoothing!r}.")


# ---- n-gram statistics ---------------------------------------------------------------------------------


def _ngram_counts(tokens: tuple, max_order: int) -> Counter[NGram]:
    """Counts of every n-gram of `tokens` for n = 1..max_order (orders share one Counter: keys differ in length)."""
    counts: Counter[NGram] = Counter()
    for order in range(1, min(max_order, len(tokens)) + 1):
        counts.update(zip(*(tokens[start:] for start in range(order))))
    return counts


def _closest_length(lengths: list[int], length: int, skip_exact: bool = False) -> int:
    """The value of sorted, distinct `lengths` closest to `length` (ties: the shorter); with `skip_exact`
    the value equal to `length` itself is not a candidate."""
    lower = upper = bisect_left(lengths, length)
    if upper < len(lengths) and lengths[upper] == length:
        if not skip_exact:
            return length
        upper += 1
    candidates = []
    if lower > 0:
        candidates.append(lengths[lower - 1])
    if upper < len(lengths):
        candidates.append(lengths[upper])
    return min(candidates, key=lambda candidate: (abs(candidate - length), candidate))


@dataclass
class _SentenceStats:
    """Sufficient statistics of one hypothesis: clipped matches and totals per order, lengths."""

    matches: list[int]
    totals: list[int]
    hypothesis_length: int
    reference_length: int


def _clipped_stats(counts: Counter[NGram], hypothesis_length: int, max_order: int, limits) -> _SentenceStats:
    """Clip `counts` by `limits(ngram, count)` (the count allowed by the references) and total them per order."""
    matches = [0] * max_order
    for ngram, count in counts.items():
        allowed = limits(ngram, count)
        if allowed:
            matches[len(ngram) - 1] += count if count < allowed else allowed
    totals = [max(1, hypothesis_length - order) for order in range(max_order)]
    return _SentenceStats(matches, totals, hypothesis_length, 0)


def _bleu_from_stats(
    matches: Sequence[int],
    totals: Sequence[int],
    hypothesis_length: int,
    reference_length: int,
    smoothing: float,
) -> float:
    """BLEU from (summed) statistics: smoothed geometric mean of precisions times the brevity penalty."""
    if matches[0] == 0:
        return 0.0
    log_precision = 0.0
    for matched, total in zip(matches, totals):
        if matched == 0:
            if smoothing <= 0:
                return 0.0
            log_precision += math.log(smoothing / total)
        else:
            log_precision += math.log(matched / total)
    return _brevity_penalty(hypothesis_length, reference_length) * math.exp(log_precision / len(matches))


def _brevity_penalty(hypothesis_length: int, reference_length: int) -> float:
    if hypothesis_length > reference_length:
        return 1.0
    if hypothesis_length == 0:
        return 0.0
    return math.exp(1.0 - reference_length / hypothesis_length)


# ---- public API ----------------------------------------------------------------------------------------


class BleuReferences:
    """A shared reference set reduced to what multi-reference BLEU needs, computed once.

    Holds, for every n-gram (n <= `max_order`) of any reference, its maximum count within a single
    reference, and the set of reference lengths. Building it costs O(total reference tokens * max_order)
    time and memory proportional to the number of distinct n-grams; pass an instance instead of a list to
    [`corpus_bleu`] / [`sentence_bleu_rewards`] to score many batches against the same corpus
    (e.g. PG-BLEU rewards at every training step) without paying that cost again.

    Args:
        references: the reference corpus: token sequences (lists of ints or of str tokens) or texts.
        max_order: the highest n-gram order that will be scored.
    """

    def __init__(self, references: Iterable[TokenSequence], max_order: int = 4):
        _check_options(max_order, DEFAULT_SMOOTHING)
        sequences, self.kind = _as_sequences("references", references)
        if not sequences:
            raise ValueError("references is empty; BLEU needs at least one reference sequence.")
        self.max_order = int(max_order)
        self.num_references = len(sequences)
        self.max_counts: dict[NGram, int] = {}
        max_counts = self.max_counts
        for tokens in sequences:
            for ngram, count in _ngram_counts(tokens, self.max_order).items():
                if count > max_counts.get(ngram, 0):
                    max_counts[ngram] = count
        self.lengths: list[int] = sorted({len(tokens) for tokens in sequences})

    def __repr__(self) -> str:
        return (
            f"BleuReferences(num_references={self.num_references}, max_order={self.max_order}, "
            f"distinct_ngrams={len(self.max_counts)})"
        )

    def _stats(self, tokens: tuple) -> _SentenceStats:
        max_counts = self.max_counts
        stats = _clipped_stats(
            _ngram_counts(tokens, self.max_order),
            len(tokens),
            self.max_order,
            lambda ngram, count: max_counts.get(ngram, 0),
        )
        stats.reference_length = _closest_length(self.lengths, len(tokens))
        return stats


def _prepare(
    hypotheses: Iterable[TokenSequence],
    references: Iterable[TokenSequence] | BleuReferences,
    max_order: int,
    smoothing: float,
) -> tuple[list[tuple], BleuReferences]:
    _check_options(max_order, smoothing)
    hypothesis_tokens, hypothesis_kind = _as_sequences("hypotheses", hypotheses)
    if not hypothesis_tokens:
        raise ValueError("hypotheses is empty; there is nothing to score.")
    if isinstance(references, BleuReferences):
        if references.max_order != max_order:
            raise ValueError(
                f"the BleuReferences were built for max_order={references.max_order}, not max_order={max_order}."
            )
        table = references
    else:
        table = BleuReferences(references, max_order)
    _check_kinds(hypothesis_kind, table.kind)
    return hypothesis_tokens, table


def sentence_bleu_rewards(
    hypotheses: Iterable[TokenSequence],
    references: Iterable[TokenSequence] | BleuReferences,
    max_order: int = 4,
    smoothing: float = DEFAULT_SMOOTHING,
) -> list[float]:
    """Sentence-level BLEU of every hypothesis, each against the whole `references` set.

    Equals `[nltk.translate.bleu_score.sentence_bleu(references, h, weights=(1/max_order,)*max_order,
    smoothing_function=SmoothingFunction(epsilon=smoothing).method1) for h in hypotheses]` (see the module
    docstring for the exact conventions), used e.g. as the PG-BLEU reward baseline.

    Cost: O(total reference tokens * max_order) to index `references` (skip it by passing a
    [`BleuReferences`]), then O(len(h) * max_order) per hypothesis, where nltk needs O(|references|)
    per hypothesis.

    Args:
        hypotheses: token sequences (lists of ints or of str tokens; arrays/tensors work) or texts.
        references: one reference set shared by all hypotheses (same token kind), or a prebuilt
            [`BleuReferences`] with the same `max_order`.
        max_order: highest n-gram order; the weights are uniform `1 / max_order`.
        smoothing: epsilon of nltk's smoothing method 1 (0 disables smoothing).

    Raises:
        ValueError: empty inputs, tokens that are neither ints nor strings, or int vs str mismatch.
    """
    hypothesis_tokens, table = _prepare(hypotheses, references, max_order, smoothing)
    scores = []
    for tokens in hypothesis_tokens:
        stats = table._stats(tokens)
        scores.append(
            _bleu_from_stats(stats.matches, stats.totals, stats.hypothesis_length, stats.reference_length, smoothing)
        )
    return scores


def corpus_bleu(
    hypotheses: Iterable[TokenSequence],
    references: Iterable[TokenSequence] | BleuReferences,
    max_order: int = 4,
    smoothing: float = DEFAULT_SMOOTHING,
) -> float:
    """BLEU of generated `hypotheses` against a whole reference corpus, as reported in text-GAN papers.

    Every hypothesis is scored against *all* `references` as its multi-reference set and the result is
    the mean of these sentence-level BLEU scores (Texygen's "BLEU with the test data as reference"); it is
    not nltk's micro-averaged `corpus_bleu` (see [`bleu_details`] for that one too). Arguments,
    conventions and cost as in [`sentence_bleu_rewards`]."""
    scores = sentence_bleu_rewards(hypotheses, references, max_order, smoothing)
    return math.fsum(scores) / len(scores)


def bleu_details(
    hypotheses: Iterable[TokenSequence],
    references: Iterable[TokenSequence] | BleuReferences,
    max_order: int = 4,
    smoothing: float = DEFAULT_SMOOTHING,
) -> dict[str, float | list[float] | int]:
    """[`corpus_bleu`] plus corpus-level statistics, in one pass.

    Returns a dict with
        `bleu`: mean sentence-level BLEU (= [`corpus_bleu`]);
        `micro_bleu`: BLEU of the summed statistics (= nltk's `corpus_bleu` with every hypothesis given the
            whole reference set and the same smoothing);
        `precisions`: summed clipped matches / summed totals per order (unsmoothed);
        `brevity_penalty`, `length_ratio`, `translation_length`, `reference_length`: the corpus-level
            brevity penalty and the lengths it is computed from (closest reference length per hypothesis).
    """
    hypothesis_tokens, table = _prepare(hypotheses, references, max_order, smoothing)
    matches = [0] * max_order
    totals = [0] * max_order
    translation_length = reference_length = 0
    scores = []
    for tokens in hypothesis_tokens:
        stats = table._stats(tokens)
        scores.append(
            _bleu_from_stats(stats.matches, stats.totals, stats.hypothesis_length, stats.reference_length, smoothing)
        )
        for order in range(max_order):
            matches[order] += stats.matches[order]
            totals[order] += stats.totals[order]
        translation_length += stats.hypothesis_length
        reference_length += stats.reference_length
    return {
        "bleu": math.fsum(scores) / len(scores),
        "micro_bleu": _bleu_from_stats(matches, totals, translation_length, reference_length, smoothing),
        "precisions": [matched / total for matched, total in zip(matches, totals)],
        "brevity_penalty": _brevity_penalty(translation_length, reference_length),
        "length_ratio": translation_length / reference_length if reference_length else 0.0,
        "translation_length": translation_length,
        "reference_length": reference_length,
    }


def self_bleu_scores(
    sequences: Iterable[TokenSequence],
    max_order: int = 4,
    smoothing: float = DEFAULT_SMOOTHING,
) -> list[float]:
    """Sentence-level BLEU of each sequence against all the *other* sequences (leave-one-out).

    Equals nltk's `sentence_bleu(sequences[:i] + sequences[i+1:], sequences[i], ...)` for every i, with the
    conventions of the module docstring. Exact leave-one-out clipping keeps, per n-gram, the two largest
    counts over the sequences: the limit for sequence i is the largest count unless i holds it, then the
    second largest (equal to the largest when two sequences share it). Cost: O(total tokens * max_order)
    time, memory proportional to the number of distinct n-grams, instead of nltk's O(N^2 * length).

    Raises:
        ValueError: fewer than two sequences, or invalid tokens (see [`sentence_bleu_rewards`]).
    """
    _check_options(max_order, smoothing)
    tokens_list, _ = _as_sequences("sequences", sequences)
    if len(tokens_list) < 2:
        raise ValueError(f"Self-BLEU needs at least two sequences, got {len(tokens_list)}.")
    all_counts = [_ngram_counts(tokens, max_order) for tokens in tokens_list]
    top1: dict[NGram, int] = {}
    top2: dict[NGram, int] = {}
    for counts in all_counts:
        for ngram, count in counts.items():
            first = top1.get(ngram, 0)
            if count > first:
                top1[ngram] = count
                if first:
                    top2[ngram] = first
            elif count > top2.get(ngram, 0):
                top2[ngram] = count

    def leave_one_out_limit(ngram: NGram, count: int) -> int:
        first = top1[ngram]
        return top2.get(ngram, 0) if count == first else first

    length_counts = Counter(len(tokens) for tokens in tokens_list)
    lengths = sorted(length_counts)
    scores = []
    for tokens, counts in zip(tokens_list, all_counts):
        stats = _clipped_stats(counts, len(tokens), max_order, leave_one_out_limit)
        reference_length = _closest_length(lengths, len(tokens), skip_exact=length_counts[len(tokens)] == 1)
        scores.append(_bleu_from_stats(stats.matches, stats.totals, len(tokens), reference_length, smoothing))
    return scores


def self_bleu(
    sequences: Iterable[TokenSequence],
    max_order: int = 4,
    smoothing: float = DEFAULT_SMOOTHING,
) -> float:
    """Self-BLEU (Zhu et al., 2018, Texygen): mean BLEU of each sequence against all the other ones.

    Higher means less diverse samples (1.0 when all sequences are identical). Computed exactly for the
    whole set (no subsampling; see [`self_bleu_scores`] for the cost and conventions)."""
    scores = self_bleu_scores(sequences, max_order, smoothing)
    return math.fsum(scores) / len(scores)
