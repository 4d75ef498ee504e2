"""Baselines of the SeqGAN paper, in the same harness as `SeqGANTrainer`.

* [`PGBleuTrainer`]: PG-BLEU, the paper's policy-gradient baseline. Identical to SeqGAN's g-step (Monte Carlo
  rollouts, REINFORCE, same rollout policy and baseline options), except that the reward of a complete
  sequence is its sentence BLEU against the training set instead of the discriminator's P(real). No
  discriminator is trained (`discriminator_pretrain_rounds` and `d_steps` must be 0).
* [`mle_baseline_trainer`]: MLE with a given number of generator updates, e.g. "as many as SeqGAN's
  adversarial g-steps", so that MLE and SeqGAN get the same total number of generator updates.
* The random baseline needs no code: an untrained generator (the paper's N(0, 0.1^2) initialisation).

Both trainers are `SeqGANTrainer`s: they log, evaluate (`evaluator=`, `eval_strategy="steps"`), save and run
under Accelerate the same way.
"""

from __future__ import annotations

import dataclasses

import datasets
import torch

from .config import SeqGANConfig
from .data import mask_after_eos
from .metrics import DEFAULT_SMOOTHING, BleuReferences, sentence_bleu_rewards
from .trainer import SeqGANTrainer


def placeholder_discriminator(vocab_size: int):
    """A one-filter CNN classifier: SeqGANTrainer needs a discriminator object even when none is trained."""
    from .models import CNNDiscriminatorConfig, CNNForSequenceClassification

    return CNNForSequenceClassification(
        CNNDiscriminatorConfig(vocab_size=vocab_size, embedding_dim=1, filter_sizes=[1], num_filters=[1], num_labels=2)
    )


def _vocab_size(model) -> int:
    return model.get_input_embeddings().num_embeddings


class PGBleuTrainer(SeqGANTrainer):
    """PG-BLEU (Yu et al., 2017, section "Synthetic data experiments"): REINFORCE with BLEU as the reward.

    The reward of a complete sequence is its sentence BLEU-`bleu_max_order` (nltk smoothing method 1 with
    `bleu_smoothing`; see `seqgan_hf.metrics`) against the whole training set as one multi-reference set;
    intermediate tokens get the mean BLEU of `rollout_num` Monte Carlo completions, exactly as SeqGAN's
    rewards from D. Sequences are cut after their first EOS (EOS and padding are not scored as tokens).

    Args:
        model, args, train_dataset, processing_class, evaluator, callbacks: as in [`SeqGANTrainer`].
        discriminator: unused; default: a tiny placeholder (SeqGANTrainer's machinery needs one).
        bleu_max_order: BLEU n-gram order (the paper does not state it; 4 is the usual BLEU).
        bleu_smoothing: epsilon of nltk's smoothing method 1.

    Raises:
        ValueError: `discriminator_pretrain_rounds` or `d_steps` is not 0 (PG-BLEU trains no discriminator).
    """

    _tag_names = ["seqgan", "pg-bleu", "text-generation"]

    def __init__(self, model, args: SeqGANConfig, train_dataset=None, discriminator=None,
                 bleu_max_order: int = 4, bleu_smoothing: float = DEFAULT_SMOOTHING, **kwargs):
        if args.discriminator_pretrain_rounds or (args.adversarial_iterations and args.d_steps):
            raise ValueError(
                "PGBleuTrainer trains no discriminator: set discriminator_pretrain_rounds=0 and d_steps=0 "
                f"(got {args.discriminator_pretrain_rounds} and {args.d_steps})."
            )
        if discriminator is None:
            discriminator = placeholder_discriminator(_vocab_size(model))
        super().__init__(model=model, discriminator=discriminator, args=args, train_dataset=train_dataset, **kwargs)
        self.bleu_max_order = bleu_max_order
        self.bleu_smoothing = bleu_smoothing
        references, _ = self._token_lists(self.real.input_ids)
        self.bleu_references = BleuReferences(references, bleu_max_order)

    def _token_lists(self, sequences: torch.LongTensor) -> tuple[list[list[int]], torch.Tensor]:
        _, keep = mask_after_eos(sequences, self.eos_token_id, self.pad_token_id)
        drop = {token for token in (self.eos_token_id, self.pad_token_id) if token is not None}
        rows = sequences.tolist()
        if not drop:
            return rows, keep
        return [[t for t, k in zip(row, row_keep) if k and t not in drop]
                for row, row_keep in zip(rows, keep.tolist())], keep

    def _score(self, sequences: torch.LongTensor) -> torch.Tensor:
        """BLEU of each complete sequence against the training set (replaces D's P(real))."""
        tokens, _ = self._token_lists(sequences.cpu())
        rewards = sentence_bleu_rewards(tokens, self.bleu_references, self.bleu_max_order, self.bleu_smoothing)
        return torch.tensor(rewards, dtype=torch.float32, device=sequences.device)


def mle_continuation_dataset(input_ids: torch.LongTensor, num_updates: int, batch_size: int,
                             seed: int = 0) -> datasets.Dataset:
    """Exactly `num_updates * batch_size` training rows: shuffled passes over `input_ids`, concatenated.

    One epoch over it is `num_updates` MLE batches, i.e. MLE training continued for that many updates."""
    if num_updates < 1:
        raise ValueError(f"num_updates must be >= 1, got {num_updates}.")
    input_ids = torch.as_tensor(input_ids)
    needed = num_updates * batch_size
    rng = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(input_ids), generator=rng)
                       for _ in range(-(-needed // len(input_ids)))])[:needed]
    return datasets.Dataset.from_dict({"input_ids": input_ids[order].tolist()})


def mle_baseline_trainer(model, args: SeqGANConfig, train_ids: torch.LongTensor, num_updates: int,
                         discriminator=None, **kwargs) -> SeqGANTrainer:
    """A `SeqGANTrainer` that only runs `num_updates` MLE updates of `model` on `train_ids` ([N, T] ids).

    Use it to give the MLE baseline as many generator updates as SeqGAN: MLE pretraining, then
    `adversarial_iterations * g_steps` more MLE updates (with `args.mle_learning_rate`, a fresh optimizer
    as SeqGAN's adversarial phase has). `args` is copied with the other phases switched off; training
    units (`global_step`, `eval_steps`) are MLE updates."""
    args = dataclasses.replace(args, mle_epochs=1, discriminator_pretrain_rounds=0, adversarial_iterations=0)
    dataset = mle_continuation_dataset(train_ids, num_updates, args.per_device_train_batch_size, args.seed)
    if discriminator is None:
        discriminator = placeholder_discriminator(_vocab_size(model))
    return SeqGANTrainer(model=model, discriminator=discriminator, args=args, train_dataset=dataset, **kwargs)
