"""The policy's sampling distribution: temperature, then top-k, then top-p (the order `generate()` uses).

One definition serves every place that needs it, so they cannot drift apart:

* the rollout engine samples sequences and Monte Carlo completions from it;
* the g-step takes the policy gradient's log-probabilities under it: log pi(y_t) of the temperature-scaled,
  top-k / top-p truncated and renormalised distribution the token was drawn from (so REINFORCE estimates the
  gradient of the expected reward of the policy that actually sampled);
* a saved model records it (`training_generation_config.json`), and `seqgan-hf sample` / `evaluate` sample from
  it by default.

Truncation is row-wise: a row's distribution never depends on the other rows of a batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: The file, beside a saved generator, that records the distribution training sampled from.
TRAINING_GENERATION_CONFIG = "training_generation_config.json"

#: `generation_kwargs` keys the sampler honours; any other key is refused.
GENERATION_KWARGS = ("temperature", "top_k", "top_p", "do_sample")


@dataclass(frozen=True)
class SamplingDistribution:
    """pi(. | context) = softmax(truncate(logits / temperature)), truncation by `top_k` then `top_p`.

    `top_k=0` and `top_p=1.0` keep the whole vocabulary (the paper's setting: the model's own distribution).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    @property
    def truncated(self) -> bool:
        return self.top_k > 0 or self.top_p < 1.0

    def logits(self, logits: torch.Tensor, keep: torch.LongTensor | None = None) -> torch.Tensor:
        """Float logits [..., V] of the distribution: scaled by the temperature, truncated tokens at -inf.

        `keep` [...]: token ids never truncated. The g-step passes the sampled tokens: its logits come from a
        second forward (train mode, maybe autocast) that can round a token at the cut-off boundary out of the
        set it was sampled from, which would make its log-probability -inf.
        """
        logits = logits.float()
        if self.temperature != 1.0:
            logits = logits / self.temperature
        if not self.truncated:
            return logits
        removed = torch.zeros_like(logits, dtype=torch.bool)
        if 0 < self.top_k < logits.shape[-1]:
            kth_largest = logits.topk(self.top_k, dim=-1).values[..., -1:]
            removed |= logits < kth_largest
        if self.top_p < 1.0:
            # Keep the most likely tokens until their mass reaches top_p (at least one): drop a token when the
            # mass of the tokens ranked above it already reaches top_p.
            masked = logits.masked_fill(removed, float("-inf"))
            probs, order = torch.softmax(masked, dim=-1).sort(dim=-1, descending=True)
            above = probs.cumsum(dim=-1) - probs
            removed |= torch.zeros_like(removed).scatter(-1, order, above >= self.top_p)
        if keep is not None:
            removed.scatter_(-1, keep.unsqueeze(-1), False)
        return logits.masked_fill(removed, float("-inf"))

    def token_log_probs(self, logits: torch.Tensor, tokens: torch.LongTensor) -> torch.Tensor:
        """log pi(token) [...] of `tokens` [...] under this distribution, from raw logits [..., V]."""
        log_probs = torch.log_softmax(self.logits(logits, keep=tokens), dim=-1)
        return log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    def describe(self) -> str:
        """In words, for logs: e.g. "temperature 0.8, top_k 50, top_p 1.0"."""
        return f"temperature {self.temperature:g}, top_k {self.top_k}, top_p {self.top_p:g}"

    def generation_kwargs(self) -> dict:
        """The same distribution as `generate()` keyword arguments (top_k=0 and top_p=1.0 switch truncation off)."""
        return {"do_sample": True, "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}

    @classmethod
    def from_generation_config(cls, generation_config) -> SamplingDistribution:
        """The distribution a `GenerationConfig` samples from (None fields: no truncation, temperature 1)."""
        top_k = getattr(generation_config, "top_k", None)
        top_p = getattr(generation_config, "top_p", None)
        temperature = getattr(generation_config, "temperature", None)
        return cls(temperature=1.0 if temperature is None else float(temperature),
                   top_k=0 if top_k is None else int(top_k), top_p=1.0 if top_p is None else float(top_p))
