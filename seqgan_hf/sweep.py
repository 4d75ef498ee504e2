"""Temperature sweeps: compare generators as quality-diversity curves, never at one point.

"Language GANs Falling Short" (Caccia et al., ICLR 2020) showed that lowering an MLE model's sampling
temperature buys quality with diversity, enough to beat GANs on quality alone. A fair comparison therefore
sweeps the temperature and compares the curves. [`temperature_sweep`] does that for one generator:

* on the oracle task (`task=`): NLL_oracle of samples drawn at temperature tau (quality) against NLL_test,
  the tempered model's per-token NLL of held-out oracle data (diversity / coverage);
* on text or token data (`references=`): BLEU of the samples against a held-out reference corpus (quality)
  against Self-BLEU of the samples (diversity; lower is more diverse);
* always: `entropy`, the mean per-token entropy of the tempered next-token distribution over a FIXED set of
  contexts (the held-out oracle data, or else the model's own temperature-1 samples). The contexts are the
  same for every temperature, so this number is exactly non-decreasing in tau: a sanity check of the sweep.

Every metric of one point uses the same temperature, and samples are drawn with the same seed at every
temperature (common random numbers: the curves are smoother than independent draws). Test metrics use
held-out data only: pass the TEST split as `references`, never the training data.

    from seqgan_hf.sweep import temperature_sweep, plot_sweeps
    sweep = temperature_sweep(generator, [0.7, 0.85, 1.0, 1.2], task=oracle_task, num_samples=5000)
    plot_sweeps({"SeqGAN": sweep}, "sweep.png")
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch

from .data import mask_after_eos, strip_after_eos
from .likelihood import default_bos_token_id, teacher_forced_nll
from .oracle import OracleTask, sample_sequences

DEFAULT_TEMPERATURES: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5)

# Sequences per teacher-forced pass when the entropy is computed too: peak memory is a few [batch, T, vocab]
# float tensors (about 100 MB each at 256 x 20 x 5000). Published sweeps were scored with it; the float32
# per-batch sums depend on it, so changing it moves their last digits.
_ENTROPY_BATCH = 256


def tempered_nll_and_entropy(
    model: torch.nn.Module,
    sequences: torch.LongTensor,
    temperature: float,
    bos_token_id: int = 0,
    mask: torch.Tensor | None = None,
    batch_size: int = _ENTROPY_BATCH,
) -> tuple[float, float]:
    """Teacher-forced pass of `[BOS] + sequences` through `model` with logits divided by `temperature`.

    Returns (mean per-token NLL of `sequences`, mean per-token entropy of the next-token distribution), both in
    nats, averaged over the positions where `mask` (default: all) is true. A name for
    [`seqgan_hf.likelihood.teacher_forced_nll`] with `entropy=True`."""
    score = teacher_forced_nll(
        model, sequences, bos_token_id, temperature=temperature, mask=mask, batch_size=batch_size, entropy=True
    )
    return score.nll, score.entropy


def temperature_sweep(
    model: torch.nn.Module,
    temperatures: Iterable[float] = DEFAULT_TEMPERATURES,
    *,
    task: OracleTask | None = None,
    references: Sequence | None = None,
    tokenizer=None,
    num_samples: int = 2000,
    sequence_length: int | None = None,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    max_order: int = 4,
    seed: int = 0,
    self_bleu: bool = True,
    top_k: int = 0,
    top_p: float = 1.0,
) -> dict:
    """Sample `model` at every temperature and measure each point with that same temperature.

    Args:
        model: a causal LM (e.g. `LSTMForCausalLM`, any `AutoModelForCausalLM`).
        temperatures: the grid (each > 0).
        task: an [`OracleTask`]: adds `nll_oracle` (oracle NLL of the samples) and `nll_test` (the tempered
            model's NLL of `task.test`), and `oracle_nll_test` (the oracle's own NLL of `task.test`, the ideal
            point on both axes).
        references: a held-out corpus (texts, or token-id lists) for `bleu` (samples vs these references)
            and, with `self_bleu=True`, `self_bleu` of the samples. Texts need `tokenizer` to decode samples.
        tokenizer: decodes samples to text when `references` are texts (and supplies EOS / padding ids).
        num_samples: samples per temperature. sequence_length: tokens per sample (default: `task`'s, else
            the model config's `sequence_length`, else 20).
        bos_token_id, eos_token_id, pad_token_id: default to the model's / tokenizer's. Samples are cut after
            their first EOS for BLEU, Self-BLEU and the entropy mask.
        max_order: BLEU n-gram order (nltk smoothing method 1, see `seqgan_hf.metrics`).
        seed: sampling seed, the same at every temperature.
        top_k, top_p: truncation of the sampling distribution at every temperature (default: none). Entropy and
            NLL_test are those of the untruncated tempered model (a cut token would make the NLL infinite).

    Returns:
        `{"temperatures": [...], "points": [{"temperature", "entropy", "nll_oracle", "nll_test", "bleu",
        "self_bleu"} ...], "num_samples", "seed", "entropy_contexts", ...}` (metrics present as applicable).
    """
    from .metrics import BleuReferences, corpus_bleu
    from .metrics import self_bleu as self_bleu_fn

    temperatures = [float(t) for t in temperatures]
    if not temperatures or min(temperatures) <= 0:
        raise ValueError(f"temperatures must be a non-empty list of positive numbers, got {temperatures}.")
    if task is None and references is None:
        raise ValueError("temperature_sweep needs task= (oracle metrics) and/or references= (BLEU / Self-BLEU).")
    bos = default_bos_token_id(model) if bos_token_id is None else bos_token_id
    if eos_token_id is None:
        eos_token_id = getattr(tokenizer, "eos_token_id", None) if tokenizer is not None else None
        if eos_token_id is None and task is None:
            eos_token_id = getattr(model.config, "eos_token_id", None)
    if pad_token_id is None and tokenizer is not None:
        pad_token_id = tokenizer.pad_token_id
    if isinstance(eos_token_id, list):
        eos_token_id = eos_token_id[0]
    if sequence_length is None:
        sequence_length = task.sequence_length if task is not None else getattr(model.config, "sequence_length", 20)

    text_references = references is not None and len(references) > 0 and isinstance(references[0], str)
    if text_references and tokenizer is None:
        raise ValueError("references are texts: pass tokenizer= so the samples can be decoded and compared.")
    if text_references:  # split like the decoded samples (see `seqgan_hf.text.tokenized_texts`)
        from .text import tokenized_texts

        references = tokenized_texts(references, tokenizer)
    table = BleuReferences(references, max_order) if references is not None else None

    if task is not None:
        task.oracle.to(next(model.parameters()).device)
        contexts, context_mask, context_name = task.test, None, "held-out oracle data (task.test)"
    else:
        base = sample_sequences(model, num_samples, sequence_length, bos, seed=seed + 1, temperature=1.0)
        _, context_mask = mask_after_eos(base, eos_token_id, pad_token_id)
        contexts, context_name = base, "the model's own temperature-1 samples"

    points = []
    for temperature in temperatures:
        point: dict[str, float] = {"temperature": temperature}
        samples = sample_sequences(model, num_samples, sequence_length, bos, seed=seed, temperature=temperature,
                                   top_k=top_k, top_p=top_p)
        contexts_score = teacher_forced_nll(model, contexts, bos, temperature=temperature, mask=context_mask,
                                            batch_size=_ENTROPY_BATCH, entropy=True)
        point["entropy"] = contexts_score.entropy
        if task is not None:
            point["nll_oracle"] = teacher_forced_nll(task.oracle, samples, bos).nll
            point["nll_test"] = contexts_score.nll
        if table is not None:
            tokens = strip_after_eos(samples, eos_token_id, pad_token_id)
            hypotheses = [tokenizer.decode(t, skip_special_tokens=True) for t in tokens] if text_references else tokens
            point["bleu"] = corpus_bleu(hypotheses, table, max_order)
            if self_bleu and len(hypotheses) > 1:
                point["self_bleu"] = self_bleu_fn(hypotheses, max_order)
        points.append(point)

    result = {
        "temperatures": temperatures,
        "points": points,
        "num_samples": num_samples,
        "sequence_length": sequence_length,
        "seed": seed,
        "top_k": top_k,
        "top_p": top_p,
        "entropy_contexts": context_name,
    }
    if task is not None:
        result["oracle_nll_test"] = teacher_forced_nll(task.oracle, task.test, bos).nll
    if table is not None:
        result["bleu_max_order"] = max_order
    return result


def plot_sweeps(
    sweeps: dict[str, dict],
    path: str,
    x: str | None = None,
    y: str | None = None,
    title: str | None = None,
) -> str:
    """Plot one curve per labelled sweep (x vs y, temperatures annotated) to a PNG at `path`.

    Defaults: NLL_test (x) vs NLL_oracle (y) when the sweeps have them, else Self-BLEU (x) vs BLEU (y).
    Lower-left is better on the oracle axes; upper-left on the BLEU axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(sweeps.values()))["points"][0]
    if x is None or y is None:
        x, y = ("nll_test", "nll_oracle") if "nll_oracle" in first else ("self_bleu", "bleu")
    labels = {"nll_test": "NLL_test (generator NLL of held-out oracle data; lower = more diverse/coverage)",
              "nll_oracle": "NLL_oracle (oracle NLL of samples; lower = better quality)",
              "self_bleu": "Self-BLEU (lower = more diverse)", "bleu": "BLEU vs held-out references (higher = better)",
              "entropy": "per-token entropy (nats)", "temperature": "temperature"}
    figure, axis = plt.subplots(figsize=(7, 5.5))
    for label, sweep in sweeps.items():
        points = [p for p in sweep["points"] if x in p and y in p and _finite(p[x]) and _finite(p[y])]
        if not points:
            continue
        line, = axis.plot([p[x] for p in points], [p[y] for p in points], marker="o", label=label)
        for p in points:
            axis.annotate(f"{p['temperature']:g}", (p[x], p[y]), textcoords="offset points", xytext=(4, 4),
                          fontsize=7, color=line.get_color())
    oracle = [s.get("oracle_nll_test") for s in sweeps.values() if s.get("oracle_nll_test") is not None]
    if oracle and (x, y) == ("nll_test", "nll_oracle"):
        # The ideal point: the oracle's own NLL of its data on both axes. Drawn only when it does not squash
        # the curves (it is usually far below and left of them); otherwise named in the legend.
        (x_low, x_high), (y_low, y_high) = axis.get_xlim(), axis.get_ylim()
        near = (x_low - (x_high - x_low) <= oracle[0]) and (y_low - (y_high - y_low) <= oracle[0])
        label = f"oracle itself ({oracle[0]:.2f}, {oracle[0]:.2f})" + ("" if near else ": off the axes")
        axis.plot([oracle[0]] if near else [], [oracle[0]] if near else [], marker="*", markersize=12,
                  color="black", linestyle="none", label=label)
    axis.set_xlabel(labels.get(x, x))
    axis.set_ylabel(labels.get(y, y))
    axis.set_title(title or "Temperature sweep (numbers: temperature)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _finite(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def main(argv: list[str] | None = None) -> None:
    """`python -m seqgan_hf.sweep OUT.png SWEEP.json[=LABEL] ... [--x self_bleu --y bleu]`: one plot of
    several sweeps written by `seqgan-hf evaluate --sweep --output`."""
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(prog="python -m seqgan_hf.sweep", description=main.__doc__)
    parser.add_argument("output")
    parser.add_argument("sweeps", nargs="+", help="JSON files, each optionally followed by =LABEL")
    parser.add_argument("--x", default=None)
    parser.add_argument("--y", default=None)
    parser.add_argument("--title", default=None)
    args = parser.parse_args(argv)
    sweeps = {}
    for item in args.sweeps:
        path, _, label = item.partition("=")
        with open(path) as handle:
            sweeps[label or os.path.splitext(os.path.basename(path))[0]] = json.load(handle)
    plot_sweeps(sweeps, args.output, x=args.x, y=args.y, title=args.title)


if __name__ == "__main__":
    main()
