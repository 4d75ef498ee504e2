"""The discriminator side of SeqGAN: feeding generator tokens to any sequence classifier, P(real), its loss.

The discriminator may share the generator's token ids (the paper's setting) or have its own tokenizer; in
the second case sequences are decoded to text with the generator's tokenizer and re-tokenized with the
discriminator's, for real and generated sequences alike, so the two classes differ only in their text.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import mask_after_eos
from .parallel import full_tensor


class DiscriminatorAdapter:
    """Turns generator token ids into discriminator inputs, logits into P(real), and labels into a loss.

    Args:
        num_labels: 1 (P(real) = sigmoid(logit)) or 2 (P(real) = softmax(logits)[1]; label 1 = real).
        eos_token_id / pad_token_id: the generator's; tokens after the first EOS are padding.
        discriminator_pad_token_id: pad id in the discriminator's vocabulary (same-vocabulary case).
        generator_tokenizer / discriminator_tokenizer: both given when D has its own tokenizer.
        max_length: truncation length of re-tokenized text.
    """

    def __init__(
        self,
        num_labels: int,
        eos_token_id: int | None,
        pad_token_id: int | None,
        discriminator_pad_token_id: int | None = None,
        generator_tokenizer=None,
        discriminator_tokenizer=None,
        max_length: int = 512,
    ):
        if num_labels not in (1, 2):
            raise ValueError(
                f"discriminator.config.num_labels is {num_labels}; SeqGAN needs 1 (sigmoid of one logit) or 2 "
                "(softmax, label 1 = real). Build the classifier with num_labels=1 or num_labels=2."
            )
        self.num_labels = num_labels
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.discriminator_pad_token_id = discriminator_pad_token_id
        self.generator_tokenizer = generator_tokenizer
        self.discriminator_tokenizer = discriminator_tokenizer
        self.retokenize = discriminator_tokenizer is not None
        self.max_length = max_length

    @classmethod
    def for_discriminator(cls, discriminator: torch.nn.Module, eos_token_id: int | None, pad_token_id: int | None,
                          generator_tokenizer=None, discriminator_tokenizer=None,
                          max_length: int = 512) -> DiscriminatorAdapter:
        """The adapter for `discriminator`: its labels and pad id; the tokenizers only when D has its own."""
        d_pad = getattr(discriminator.config, "pad_token_id", None)
        return cls(
            num_labels=discriminator.config.num_labels, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            discriminator_pad_token_id=d_pad if d_pad is not None else pad_token_id,
            generator_tokenizer=generator_tokenizer if discriminator_tokenizer is not None else None,
            discriminator_tokenizer=discriminator_tokenizer, max_length=max_length,
        )

    def encode(self, sequences: torch.LongTensor, device: torch.device) -> dict[str, torch.Tensor]:
        """Discriminator inputs for generator sequences [R, T] (EOS kept, everything after it dropped)."""
        sequences, keep = mask_after_eos(sequences, self.eos_token_id, self.pad_token_id)
        if self.retokenize:
            texts = self.generator_tokenizer.batch_decode(
                [row[mask].tolist() for row, mask in zip(sequences.cpu(), keep.cpu())], skip_special_tokens=True
            )
            encoded = self.discriminator_tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            return {"input_ids": encoded["input_ids"].to(device), "attention_mask": encoded["attention_mask"].to(device)}
        if self.discriminator_pad_token_id is not None:
            sequences = sequences.masked_fill(~keep, self.discriminator_pad_token_id)
        return {"input_ids": sequences.to(device), "attention_mask": keep.long().to(device)}

    def real_probability(self, logits: torch.Tensor) -> torch.Tensor:
        """P(real) [R] from the classifier's logits [R, num_labels]."""
        logits = logits.float()
        if self.num_labels == 1:
            return torch.sigmoid(logits[:, 0])
        return torch.softmax(logits, dim=-1)[:, 1]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of real (1) vs generated (0)."""
        logits = logits.float()
        if self.num_labels == 1:
            return F.binary_cross_entropy_with_logits(logits[:, 0], labels.float())
        return F.cross_entropy(logits, labels.long())

    def predictions(self, logits: torch.Tensor) -> torch.Tensor:
        """1 where the classifier calls a sequence real."""
        return (self.real_probability(logits) > 0.5).long()

    @torch.no_grad()
    def real_probabilities(self, discriminator: torch.nn.Module, sequences: torch.LongTensor) -> torch.Tensor:
        """P(real) [R] of generator sequences [R, T] under `discriminator`, with dropout off."""
        was_training = discriminator.training
        discriminator.eval()
        device = next(discriminator.parameters()).device
        logits = discriminator(**self.encode(sequences, device)).logits
        discriminator.train(was_training)
        return self.real_probability(logits).to(sequences.device)


def regularization_loss(discriminator: torch.nn.Module) -> torch.Tensor | float:
    """Extra loss terms a discriminator asks for (the paper's CNN: L2 on its output layer), as a whole tensor
    (under FSDP2 a sum over sharded parameters is a DTensor, made whole on every process here)."""
    hook = getattr(discriminator, "regularization_loss", None)
    return full_tensor(hook()) if callable(hook) else 0.0
