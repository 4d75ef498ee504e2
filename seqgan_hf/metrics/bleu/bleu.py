"""BLEU of generated sequences against one shared reference corpus, as an `evaluate` module.

Load it with `evaluate.load(seqgan_hf.metrics.path("bleu"))` (no Hub access needed). The math lives in
`seqgan_hf.metrics` (`bleu_details`); this script only adapts it to the `evaluate` interface.
"""

import evaluate

import seqgan_hf.metrics.base

_CITATION = """\
@inproceedings{papineni2002bleu,
  title={BLEU: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing},
  booktitle={Proceedings of ACL},
  year={2002}
}
@inproceedings{zhu2018texygen,
  title={Texygen: A Benchmarking Platform for Text Generation Models},
  author={Zhu, Yaoming and Lu, Sidi and Zheng, Lei and Guo, Jiaxian and Zhang, Weinan and Wang, Jun and Yu, Yong},
  booktitle={SIGIR},
  year={2018}
}
"""

_DESCRIPTION = """\
BLEU as used to evaluate text GANs: every generated sequence is scored against the WHOLE reference corpus
(e.g. the test set) as its multi-reference set, and `bleu` is the mean of these sentence-level scores
(Texygen's convention). Conventions are those of nltk's `sentence_bleu` with `SmoothingFunction().method1`
(epsilon 0.1 added to zero clipped counts), uniform weights 1/max_order and the closest reference length
for the brevity penalty.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated sequences: lists of int token ids, or texts (split on whitespace).
    references: ONE reference corpus shared by all predictions (any length; same kind as predictions).
    max_order: highest n-gram order (default 4, i.e. BLEU-4).
    smoothing: epsilon of nltk's smoothing method 1 (default 0.1; 0 disables smoothing).
Returns:
    bleu: mean sentence-level BLEU of the predictions.
    micro_bleu: BLEU of the summed n-gram statistics (nltk's corpus_bleu with the shared reference set).
    precisions: corpus-level clipped n-gram precisions (unsmoothed), one per order.
    brevity_penalty, length_ratio, translation_length, reference_length: corpus-level length statistics.
Examples:
    >>> import evaluate, seqgan_hf.metrics
    >>> bleu = evaluate.load(seqgan_hf.metrics.path("bleu"))
    >>> bleu.compute(predictions=[[1, 2, 3, 4]], references=[[1, 2, 3, 4], [5, 6]])["bleu"]
    1.0
"""


class Bleu(seqgan_hf.metrics.base.SequenceMetric):
    """BLEU against a shared reference corpus (see the module description)."""

    takes_references = True

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                seqgan_hf.metrics.base.TEXT_PREDICTIONS,
                seqgan_hf.metrics.base.TOKEN_PREDICTIONS,
            ],
            reference_urls=["https://www.aclweb.org/anthology/P02-1040.pdf", "https://arxiv.org/abs/1802.01886"],
        )

    def _compute(
        self,
        predictions: list,
        reference_corpus: list | None = None,
        max_order: int = 4,
        smoothing: float = seqgan_hf.metrics.DEFAULT_SMOOTHING,
    ) -> dict:
        if reference_corpus is None:
            raise ValueError("the bleu metric needs references=<the reference corpus>.")
        return seqgan_hf.metrics.bleu_details(predictions, reference_corpus, max_order=max_order, smoothing=smoothing)
