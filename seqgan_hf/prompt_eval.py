"""Evaluation of a prompt-conditioned generator on held-out prompt-completion pairs.

[`PromptEvaluator`] (`SeqGANTrainer(evaluator=...)`) completes held-out prompts and reports:

* `bleu2` .. `bleu{max_order}`: the mean sentence BLEU of each completion against the held-out reference
  completion(s) of *its own* prompt (every reference of that prompt when it occurs more than once), not against
  the whole corpus: a completion must fit its context;
* `self_bleu`: BLEU-`max_order` of each completion against the other completions (lower: more diverse);
* `nll` / `perplexity`: the generator's per-token NLL of the reference completions given their prompts (EOS
  included when the data has one).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import datasets
import torch
import torch.nn.functional as F

from .data import strip_after_eos
from .prompt_data import encode_prompt_dataset
from .prompts import Prompts
from .rollout import RolloutEngine
from .sampling import SamplingDistribution
from .text import tokenized_texts


class PromptEvaluator:
    """Completions of held-out prompts scored against the references of the same prompts (see the module).

    Args:
        eval_dataset: held-out pairs (`prompt` / `completion` columns, in any format `SeqGANTrainer` takes).
        tokenizer: the generator's tokenizer (encodes the pairs, decodes the completions).
        sequence_length: T, as training used it.
        bos_token_id: the start token (default: the tokenizer's BOS).
        max_prompt_length / prompt_overflow / overflow / append_eos: as in `SeqGANConfig`, for the NLL's encoding
            (BLEU always uses the whole reference texts).
        num_samples: held-out prompts completed per evaluation (the first ones; all when there are fewer),
            sampled with `seed`: the same draws at every evaluation.
        distribution: the sampling distribution (default: the model's logits as they are; pass training's).
        self_bleu_samples: completions Self-BLEU compares (it is quadratic).
        what: the data's name in warnings and errors (e.g. "--references").
    """

    def __init__(self, eval_dataset: datasets.Dataset, tokenizer, sequence_length: int,
                 bos_token_id: int | None = None, max_prompt_length: int | None = None,
                 prompt_overflow: str = "truncate", overflow: str = "truncate", append_eos: bool = True,
                 num_samples: int = 500, max_order: int = 4, seed: int = 1234,
                 distribution: SamplingDistribution | None = None, self_bleu_samples: int = 200,
                 batch_size: int = 256, what: str = "eval_dataset"):
        from .metrics import BleuReferences

        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.bos_token_id = bos_token_id if bos_token_id is not None else tokenizer.bos_token_id
        if self.bos_token_id is None:
            raise ValueError("PromptEvaluator needs a start token: pass bos_token_id, or a tokenizer with a BOS.")
        self.eos_token_id = tokenizer.eos_token_id if append_eos else None
        self.pad_token_id = tokenizer.pad_token_id
        self.max_order = max_order
        self.seed = seed
        self.distribution = distribution or SamplingDistribution()
        self.self_bleu_samples = self_bleu_samples
        self.batch_size = batch_size
        pairs = encode_prompt_dataset(
            eval_dataset, sequence_length, tokenizer, self.eos_token_id, self.pad_token_id,
            vocab_size=len(tokenizer), max_prompt_length=max_prompt_length, prompt_overflow=prompt_overflow,
            overflow=overflow, what=what, fixed_length=not append_eos,
        )
        self.prompts, self.completions = pairs.prompts, pairs.completions
        # BLEU's references: every held-out completion of a prompt, as the tokenizer splits words (like samples).
        texts = tokenized_texts(tokenizer.batch_decode(
            strip_after_eos(pairs.completions.input_ids, self.eos_token_id, self.pad_token_id),
            skip_special_tokens=True), tokenizer)
        by_prompt: dict[tuple[int, ...], list[str]] = defaultdict(list)
        for prompt, text in zip(self.prompts, texts):
            by_prompt[tuple(prompt)].append(text)
        self.sampled_rows = list(range(min(num_samples, len(self.prompts))))
        self.references = [
            {n: BleuReferences(by_prompt[tuple(self.prompts[row])], n) for n in range(2, max_order + 1)}
            for row in self.sampled_rows
        ]

    @torch.no_grad()
    def completions_of(self, generator: torch.nn.Module, rows: Sequence[int]) -> list[str]:
        """Decoded completions of held-out prompts `rows`, sampled with the evaluator's distribution and seed."""
        distribution = self.distribution
        engine = RolloutEngine(self.bos_token_id, self.sequence_length, 1, temperature=distribution.temperature,
                               top_k=distribution.top_k, top_p=distribution.top_p)
        rng = torch.Generator().manual_seed(self.seed)
        was_training = generator.training
        generator.eval()
        texts = []
        for start in range(0, len(rows), self.batch_size):
            batch = [self.prompts[row] for row in rows[start : start + self.batch_size]]
            prompts = Prompts.from_token_lists(batch, self.bos_token_id, self.pad_token_id)
            samples = engine.sample(generator, len(batch), rng=rng, prompts=prompts).cpu()
            tokens = strip_after_eos(samples, self.eos_token_id, self.pad_token_id)
            texts += [self.tokenizer.decode(row, skip_special_tokens=True) for row in tokens]
        generator.train(was_training)
        return texts

    def __call__(self, generator: torch.nn.Module) -> dict[str, float]:
        from .metrics import self_bleu

        texts = self.completions_of(generator, self.sampled_rows)
        metrics = {f"bleu{n}": self.bleu(texts, n) for n in range(2, self.max_order + 1)}
        if len(texts) > 1:
            metrics["self_bleu"] = self_bleu(texts[: self.self_bleu_samples], self.max_order)
        nll = self.nll(generator)
        metrics.update(nll=nll, perplexity=math.exp(min(nll, 50.0)))
        return metrics

    def bleu(self, texts: Sequence[str], max_order: int) -> float:
        """Mean sentence BLEU-`max_order` of completions `texts` (of the prompts `sampled_rows`, in order), each
        against the references of its own prompt."""
        from .metrics import sentence_bleu_rewards

        scores = [sentence_bleu_rewards([text], tables[max_order], max_order)[0]
                  for text, tables in zip(texts, self.references)]
        return math.fsum(scores) / len(scores)

    @torch.no_grad()
    def nll(self, generator: torch.nn.Module) -> float:
        """Per-token NLL of the held-out completions given their prompts (teacher forcing, completion tokens only)."""
        device = next(generator.parameters()).device
        was_training = generator.training
        generator.eval()
        total, count = 0.0, 0
        lengths = self.completions.lengths
        for start in range(0, len(self.prompts), self.batch_size):
            rows = slice(start, start + self.batch_size)
            prompts = Prompts.from_token_lists(self.prompts[rows], self.bos_token_id, self.pad_token_id, device)
            targets = self.completions.input_ids[rows].to(device)
            input_ids, attention_mask, position_ids = prompts.context(targets[:, :-1])
            logits = generator(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids).logits[:, prompts.width - 1 :]
            losses = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
            mask = torch.arange(self.sequence_length, device=device)[None, :] < lengths[rows].to(device)[:, None]
            total += float((losses * mask).sum())
            count += int(mask.sum())
        generator.train(was_training)
        return total / max(count, 1)
