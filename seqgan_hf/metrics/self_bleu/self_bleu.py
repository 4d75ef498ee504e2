"""Self-BLEU of generated sequences (diversity; Zhu et al., 2018), as an `evaluate` module.

Load it with `evaluate.load(seqgan_hf.metrics.path("self_bleu"))` (no Hub access needed). The math lives in
`seqgan_hf.metrics` (`self_bleu`); this script only adapts it to the `evaluate` interface.
"""

import evaluate

import seqgan_hf.metrics.base

_CITATION = """\
@inproceedings{zhu2018texygen,
  title={Texygen: A Benchmarking Platform for Text Generation Models},
  author={Zhu, Yaoming and Lu, Sidi and Zheng, Lei and Guo, Jiaxian and Zhang, Weinan and Wang, Jun and Yu, Yong},
  booktitle={SIGIR},
  year={2018}
}
"""

_DESCRIPTION = """\
Self-BLEU: every generated sequence is scored with BLEU against all the OTHER generated sequences
(exact leave-one-out over the whole set, no subsampling) and the scores are averaged. Higher means less
diverse samples; identical samples give 1.0. BLEU conventions: nltk's `sentence_bleu` with
`SmoothingFunction().method1` (epsilon 0.1), uniform weights 1/max_order, closest reference length.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: at least two generated sequences: lists of int token ids, or texts (split on whitespace).
    max_order: highest n-gram order (default 4).
    smoothing: epsilon of nltk's smoothing method 1 (default 0.1; 0 disables smoothing).
Returns:
    self_bleu: the mean leave-one-out BLEU.
Examples:
    >>> import evaluate, seqgan_hf.metrics
    >>> self_bleu = evaluate.load(seqgan_hf.metrics.path("self_bleu"))
    >>> self_bleu.compute(predictions=["a b c d", "a b c d"])
    {'self_bleu': 1.0}
"""


class SelfBleu(seqgan_hf.metrics.base.SequenceMetric):
    """Self-BLEU of the predictions (see the module description)."""

    takes_references = False

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                seqgan_hf.metrics.base.TEXT_PREDICTIONS,
                seqgan_hf.metrics.base.TOKEN_PREDICTIONS,
            ],
            reference_urls=["https://arxiv.org/abs/1802.01886"],
        )

    def _compute(
        self,
        predictions: list,
        max_order: int = 4,
        smoothing: float = seqgan_hf.metrics.DEFAULT_SMOOTHING,
    ) -> dict:
        return {"self_bleu": seqgan_hf.metrics.self_bleu(predictions, max_order=max_order, smoothing=smoothing)}
