"""Text-GAN evaluation metrics: plain functions and `evaluate` modules shipped with the package.

Plain functions (no `evaluate` overhead; what the trainer and benchmarks call):

* [`corpus_bleu`]: mean sentence BLEU of generated samples, each against a whole reference corpus
  (Texygen's "BLEU with the test data as reference"); [`bleu_details`] adds corpus-level statistics.
* [`sentence_bleu_rewards`]: the per-sample BLEU scores (e.g. PG-BLEU rewards).
* [`self_bleu`]: mean BLEU of each sample against all the other samples (diversity; lower is more diverse).
* [`nll_oracle`]: mean per-token NLL of samples under an oracle LM (synthetic-data benchmark).

All BLEU variants follow nltk's `sentence_bleu` with `SmoothingFunction().method1` (epsilon 0.1), uniform
weights `1 / max_order` and the closest reference length; see `seqgan_hf.metrics._bleu` for details.

Cost: nothing is subsampled. A reference corpus is indexed once (O(total tokens * max_order) time, memory
proportional to its distinct n-grams), then each sample costs O(length * max_order); Self-BLEU of N samples
is O(N * length * max_order) (exact leave-one-out, not nltk's O(N^2 * length)). For 10k sequences of
20 tokens this is about a second of CPU; [`BleuReferences`] lets repeated scoring skip the indexing.

`evaluate` modules (loaded from this package's directory, no Hub access)::

    import evaluate
    import seqgan_hf.metrics

    bleu = evaluate.load(seqgan_hf.metrics.path("bleu"))
    bleu.compute(predictions=samples, references=test_corpus)  # references: ONE shared corpus
    evaluate.load(seqgan_hf.metrics.path("self_bleu")).compute(predictions=samples)
    evaluate.load(seqgan_hf.metrics.path("nll_oracle")).compute(predictions=samples, oracle="oracle_dir")
"""

from __future__ import annotations

import os

from ._bleu import (
    DEFAULT_SMOOTHING,
    BleuReferences,
    TokenSequence,
    bleu_details,
    corpus_bleu,
    self_bleu,
    self_bleu_scores,
    sentence_bleu_rewards,
)
from ._nll import load_oracle_model, nll_oracle

#: Names accepted by [`path`]: one directory with an `evaluate` module script each.
METRIC_NAMES: tuple[str, ...] = ("bleu", "self_bleu", "nll_oracle")


def path(name: str) -> str:
    """Absolute path of the local `evaluate` module for `name`, for `evaluate.load(path(name))`.

    Raises:
        ValueError: `name` is not one of [`METRIC_NAMES`].
    """
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown metric {name!r}; valid names are {', '.join(METRIC_NAMES)}.")
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)


__all__ = [
    "DEFAULT_SMOOTHING",
    "METRIC_NAMES",
    "BleuReferences",
    "TokenSequence",
    "bleu_details",
    "corpus_bleu",
    "load_oracle_model",
    "nll_oracle",
    "path",
    "self_bleu",
    "self_bleu_scores",
    "sentence_bleu_rewards",
]
