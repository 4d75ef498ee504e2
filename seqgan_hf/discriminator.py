"""The discriminator side of SeqGAN: feeding generator tokens to any sequence classifier, P(real), its loss.

The discriminator may share the generator's token ids (the paper's setting) or have its own tokenizer; in
the second case sequences are decoded to text with the generator's tokenizer and re-tokenized with the
discriminator's, for real and generated sequences alike, so the two classes differ only in their text.

With prompts the discriminator judges pairs, (prompt, real completion) against (prompt, generated completion): a
same-vocabulary classifier reads the prompt's tokens followed by the completion's, right-padded to a fixed width
(`prompt_width` + T, so a row's input never depends on its batch); a classifier with its own tokenizer gets the
two texts through its tokenizer's pair encoding (e.g. `[CLS] prompt [SEP] completion [SEP]`).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from .data import mask_after_eos
from .parallel import full_tensor
from .prompts import Prompts

logger = logging.getLogger(__name__)


class DiscriminatorAdapter:
    """Turns generator token ids into discriminator inputs, logits into P(real), and labels into a loss.

    Args:
        num_labels: 1 (P(real) = sigmoid(logit)) or 2 (P(real) = softmax(logits)[1]; label 1 = real).
        eos_token_id / pad_token_id: the generator's; tokens after the first EOS are padding.
        discriminator_pad_token_id: pad id in the discriminator's vocabulary (same-vocabulary case).
        generator_tokenizer / discriminator_tokenizer: both given when D has its own tokenizer.
        max_length: truncation length of re-tokenized text (pairs: of prompt and completion together).
        prompt_width: same-vocabulary pairs: the prompt tokens every input has room for (longer prompts keep their
            end); None: the batch's longest prompt.
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
        prompt_width: int | None = None,
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
        self.prompt_width = prompt_width
        self._warned_truncation = False

    @classmethod
    def for_discriminator(cls, discriminator: torch.nn.Module, eos_token_id: int | None, pad_token_id: int | None,
                          generator_tokenizer=None, discriminator_tokenizer=None,
                          max_length: int = 512, prompt_width: int | None = None) -> DiscriminatorAdapter:
        """The adapter for `discriminator`: its labels and pad id; the tokenizers only when D has its own."""
        d_pad = getattr(discriminator.config, "pad_token_id", None)
        return cls(
            num_labels=discriminator.config.num_labels, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
            discriminator_pad_token_id=d_pad if d_pad is not None else pad_token_id,
            generator_tokenizer=generator_tokenizer if discriminator_tokenizer is not None else None,
            discriminator_tokenizer=discriminator_tokenizer, max_length=max_length, prompt_width=prompt_width,
        )

    def encode(self, sequences: torch.LongTensor, device: torch.device,
               prompts: Prompts | None = None) -> dict[str, torch.Tensor]:
        """Discriminator inputs for generator sequences [R, T] (EOS kept, everything after it dropped), each after
        its row of `prompts` when given."""
        sequences, keep = mask_after_eos(sequences, self.eos_token_id, self.pad_token_id)
        if self.retokenize:
            texts = self.generator_tokenizer.batch_decode(
                [row[mask].tolist() for row, mask in zip(sequences.cpu(), keep.cpu())], skip_special_tokens=True
            )
            if prompts is None:
                encoded = self.discriminator_tokenizer(
                    texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
            else:
                prompt_texts = self.generator_tokenizer.batch_decode(prompts.token_lists(), skip_special_tokens=True)
                encoded = self.discriminator_tokenizer(
                    prompt_texts, texts, padding=True, truncation="longest_first", max_length=self.max_length,
                    return_tensors="pt",
                )
                self._warn_if_full(encoded["attention_mask"])
            # Pair encodings may mark which text a token belongs to (BERT's token_type_ids): passed on as given.
            keys = ("input_ids", "attention_mask", "token_type_ids") if prompts is not None else ("input_ids",
                                                                                                 "attention_mask")
            return {key: encoded[key].to(device) for key in keys if key in encoded}
        mask = keep
        if prompts is not None:
            sequences, mask = self._pairs(prompts.to(sequences.device), sequences, keep)
        if self.discriminator_pad_token_id is not None:
            sequences = sequences.masked_fill(~mask, self.discriminator_pad_token_id)
        return {"input_ids": sequences.to(device), "attention_mask": mask.long().to(device)}

    def prompt_offsets(self, prompts: Prompts) -> torch.LongTensor:
        """Same-vocabulary pairs: where each row's completion starts in its discriminator input (its prompt's kept
        tokens)."""
        lengths = prompts.lengths
        return lengths.clamp(max=self.prompt_width) if self.prompt_width is not None else lengths

    def _pairs(self, prompts: Prompts, completions: torch.LongTensor, keep: torch.Tensor):
        """[prompt tokens, completion tokens, padding] rows of width `prompt_width` + T, and their mask."""
        rows, length = completions.shape
        width = self.prompt_width if self.prompt_width is not None else prompts.width - 1
        offsets = self.prompt_offsets(prompts)
        pairs = completions.new_zeros(rows, width + length)
        mask = torch.zeros_like(pairs, dtype=torch.bool)
        # A kept prompt token in column c of the left-padded prompts goes to column c - (L - offset): its last
        # `offset` tokens land at 0 .. offset - 1 (BOS, pads and any cut-off start fall below 0).
        target = torch.arange(prompts.width, device=pairs.device)[None, :] - (prompts.width - offsets)[:, None]
        row_index = torch.arange(rows, device=pairs.device)[:, None]
        inside = target >= 0
        pairs[row_index.expand_as(target)[inside], target[inside]] = prompts.input_ids[inside]
        mask[row_index.expand_as(target)[inside], target[inside]] = True
        columns = offsets[:, None] + torch.arange(length, device=pairs.device)[None, :]
        pairs[row_index, columns] = completions
        mask[row_index, columns] = keep
        return pairs, mask

    def _warn_if_full(self, attention_mask: torch.Tensor) -> None:
        if not self._warned_truncation and attention_mask.shape[1] >= self.max_length and bool(attention_mask[:, -1].any()):
            self._warned_truncation = True
            logger.warning(
                "Some (prompt, completion) pairs fill the discriminator's max_length=%d tokens and were cut to it "
                "(the longer of the two texts loses its end first). Raise discriminator_max_length or lower "
                "max_prompt_length / sequence_length so that pairs fit.", self.max_length,
            )

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
    def real_probabilities(self, discriminator: torch.nn.Module, sequences: torch.LongTensor,
                           prompts: Prompts | None = None) -> torch.Tensor:
        """P(real) [R] of generator sequences [R, T] (after `prompts`) under `discriminator`, with dropout off."""
        was_training = discriminator.training
        discriminator.eval()
        device = next(discriminator.parameters()).device
        logits = discriminator(**self.encode(sequences, device, prompts)).logits
        discriminator.train(was_training)
        return self.real_probability(logits).to(sequences.device)


def regularization_loss(discriminator: torch.nn.Module) -> torch.Tensor | float:
    """Extra loss terms a discriminator asks for (the paper's CNN: L2 on its output layer), as a whole tensor
    (under FSDP2 a sum over sharded parameters is a DTensor, made whole on every process here)."""
    hook = getattr(discriminator, "regularization_loss", None)
    return full_tensor(hook()) if callable(hook) else 0.0
