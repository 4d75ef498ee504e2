"""NLL_oracle (Yu et al., 2017): how likely an oracle LM finds generated samples, as an `evaluate` module.

Load it with `evaluate.load(seqgan_hf.metrics.path("nll_oracle"))` (no Hub access needed). The work is done
by `seqgan_hf.metrics.nll_oracle`; this script only adapts it to the `evaluate` interface.
"""

import evaluate

import seqgan_hf.metrics.base

_CITATION = """\
@inproceedings{yu2017seqgan,
  title={SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient},
  author={Yu, Lantao and Zhang, Weinan and Wang, Jun and Yu, Yong},
  booktitle={AAAI},
  year={2017}
}
"""

_DESCRIPTION = """\
NLL_oracle: the mean per-token negative log-likelihood (nats) that an oracle language model assigns to
generated token sequences; the quality measure of SeqGAN's synthetic-data experiment (lower is better).
Each sequence is fed as [bos_token_id] + sequence and -log p(token) is averaged over all sequence tokens.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated sequences of int token ids (lengths may differ).
    oracle: the oracle: a loaded causal LM, or the path of a `save_pretrained` directory (loaded with
        transformers.AutoModelForCausalLM) or of a SeqGAN-paper `.npz`.
    bos_token_id: start token fed before each sequence (default: the oracle's generation_config.bos_token_id,
        else its config.bos_token_id, else 0).
    batch_size: sequences per forward pass (default 1024).
    device: device for an oracle loaded from a path (default: CPU).
Returns:
    nll_oracle: mean per-token NLL.
Examples:
    >>> import evaluate, seqgan_hf.metrics
    >>> nll = evaluate.load(seqgan_hf.metrics.path("nll_oracle"))
    >>> nll.compute(predictions=samples, oracle="path/to/oracle")  # doctest: +SKIP
    {'nll_oracle': 9.03...}
"""


class NllOracle(seqgan_hf.metrics.base.SequenceMetric):
    """Mean per-token NLL of the predictions under an oracle LM (see the module description)."""

    takes_references = False

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=seqgan_hf.metrics.base.TOKEN_PREDICTIONS,
            reference_urls=["https://arxiv.org/abs/1609.05473"],
        )

    def _compute(
        self,
        predictions: list,
        oracle=None,
        bos_token_id: int | None = None,
        batch_size: int = 1024,
        device: str | None = None,
    ) -> dict:
        if oracle is None:
            raise ValueError("nll_oracle needs oracle=<a causal LM or the path of a saved one>.")
        value = seqgan_hf.metrics.nll_oracle(
            predictions, oracle, bos_token_id=bos_token_id, batch_size=batch_size, device=device
        )
        return {"nll_oracle": value}
