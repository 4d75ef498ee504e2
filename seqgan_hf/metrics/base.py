"""Shared base of the `evaluate` modules in this package (the scripts in `bleu/`, `self_bleu/`, `nll_oracle/`).

`evaluate` stores every input column row by row, so the predictions go through its usual machinery while
a *shared* reference corpus (whose length has nothing to do with the number of predictions) cannot be a
column: [`SequenceMetric.compute`] takes it as `references=` and hands it to `_compute` as the keyword
`reference_corpus`. The base also turns what `evaluate` would fail on obscurely (empty predictions,
tensors, references given to a metric without any) into clear `ValueError`s.

Module scripts must reference this class as `seqgan_hf.metrics.base.SequenceMetric` (not import the name):
`evaluate` takes the first metric class it finds in the script's namespace as the module's class.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import datasets
import evaluate

#: Feature sets for predictions given as texts (whitespace-tokenized) or as token-id sequences.
TEXT_PREDICTIONS = datasets.Features({"predictions": datasets.Value("string")})
TOKEN_PREDICTIONS = datasets.Features({"predictions": datasets.Sequence(datasets.Value("int64"))})


def _to_list(value: Any, name: str) -> list:
    """`value` as a list of texts or of int token-id lists; ValueError for anything else or a mix of both."""
    if hasattr(value, "tolist"):  # numpy arrays, torch tensors
        value = value.tolist()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of token sequences or texts, got {type(value).__name__}.")
    items = [item.tolist() if hasattr(item, "tolist") else item for item in value]
    texts = sum(isinstance(item, str) for item in items)
    if 0 < texts < len(items):
        raise ValueError(f"{name} mixes texts and token sequences; give one kind only.")
    if not texts:
        for index, item in enumerate(items):
            if not isinstance(item, Iterable) or not all(
                isinstance(token, numbers.Integral) and not isinstance(token, bool) for token in item
            ):
                raise ValueError(
                    f"{name}[{index}] is neither a text nor a sequence of int token ids: "
                    f"{_summarize(item)}."
                )
    return items


def _summarize(item: Any, limit: int = 80) -> str:
    """A short repr for error messages."""
    text = repr(item)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SequenceMetric(evaluate.Metric):
    """An `evaluate.Metric` over generated sequences, optionally scored against one shared reference set.

    Subclasses set `takes_references` and implement `_info` / `_compute(self, predictions, ...)`; when
    `takes_references` is true `_compute` also receives `reference_corpus` (the `references` given to
    [`compute`])."""

    takes_references: bool = False

    def _check_references(self, references: Any) -> None:
        if references is not None and not self.takes_references:
            raise ValueError(f"the {self.name} metric takes no references.")
        if references is not None:
            raise ValueError(
                f"{self.name} scores every prediction against one shared reference set: pass it to "
                "compute(references=...) rather than to add/add_batch."
            )

    def compute(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> dict | None:
        """Score `predictions` (plus those added with `add`/`add_batch`).

        Args:
            predictions: token-id sequences (lists of ints, or an int array/tensor [N, T]) or texts.
            references: for metrics that take references, the ONE reference corpus every prediction is
                scored against (same kind as the predictions); not a per-prediction column.
            **kwargs: the metric's options, forwarded to `_compute`.
        """
        if references is not None:
            if not self.takes_references:
                raise ValueError(f"the {self.name} metric takes no references.")
            kwargs["reference_corpus"] = _to_list(references, "references")
            if not kwargs["reference_corpus"]:
                raise ValueError("references is empty; pass the reference corpus as a non-empty list.")
        elif self.takes_references and kwargs.get("reference_corpus") is None:
            raise ValueError(f"the {self.name} metric needs references=<the reference corpus>.")
        if predictions is not None:
            predictions = _to_list(predictions, "predictions")
            if not predictions:
                raise ValueError("predictions is empty; there is nothing to score.")
        elif self.writer is None:
            raise ValueError("no predictions: pass predictions=... or add them with add/add_batch first.")
        return super().compute(predictions=predictions, **kwargs)

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add a batch of predictions (a shared reference corpus goes to `compute`, not here)."""
        self._check_references(references)
        predictions = _to_list(predictions, "predictions") if predictions is not None else None
        if not predictions:
            raise ValueError("add_batch got no predictions.")
        super().add_batch(predictions=predictions, **kwargs)

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one prediction (a shared reference corpus goes to `compute`, not here)."""
        self._check_references(reference)
        if prediction is None:
            raise ValueError("add got no prediction.")
        prediction = _to_list([prediction], "prediction")[0]
        super().add(prediction=prediction, **kwargs)
