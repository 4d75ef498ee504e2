"""The SeqGAN paper's CNN discriminator, as a transformers sequence classifier.

Embedding -> parallel 1-D convolutions of several widths -> ReLU -> max-over-time pooling ->
one highway layer -> dropout -> linear output (docs/PROTOCOL.md). Inputs shorter than the widest
filter are right-padded with `pad_token_id` so every filter sees at least one window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import SequenceClassifierOutput

PAPER_FILTER_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
PAPER_NUM_FILTERS = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]


class CNNDiscriminatorConfig(PretrainedConfig):
    """Configuration of [`CNNForSequenceClassification`].

    Args:
        vocab_size: number of tokens.
        embedding_dim: token embedding size (the paper: 64).
        filter_sizes: convolution widths (the paper: 1..10, 15, 20).
        num_filters: filters per width, same length as `filter_sizes`.
        dropout: probability of *dropping* a unit before the output layer. The paper's code says
            "keep 0.75", i.e. `dropout=0.25` (writing 0.75 here is a known bug of ports).
        l2_reg_lambda: L2 penalty on the output layer's weight and bias, added to the loss (the paper: 0.2).
        num_labels: 2 (softmax, "real" = label 1, as in the paper) or 1 (sigmoid of the single logit).
        init_std: std of the normal init of embeddings and linear layers.
    """

    model_type = "seqgan_cnn"

    def __init__(
        self,
        vocab_size: int = 5000,
        embedding_dim: int = 64,
        filter_sizes: list[int] | None = None,
        num_filters: list[int] | None = None,
        dropout: float = 0.25,
        l2_reg_lambda: float = 0.2,
        init_std: float = 0.1,
        pad_token_id: int | None = 0,
        num_labels: int | None = None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.filter_sizes = list(filter_sizes if filter_sizes is not None else PAPER_FILTER_SIZES)
        self.num_filters = list(num_filters if num_filters is not None else PAPER_NUM_FILTERS)
        if len(self.filter_sizes) != len(self.num_filters):
            raise ValueError(
                f"filter_sizes ({len(self.filter_sizes)} widths) and num_filters ({len(self.num_filters)} counts) "
                "must have the same length: give one filter count per width."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} must be a drop probability in [0, 1); the paper's keep 0.75 is 0.25.")
        self.dropout = dropout
        self.l2_reg_lambda = l2_reg_lambda
        self.init_std = init_std
        if num_labels is not None:
            kwargs["num_labels"] = num_labels
        elif "id2label" not in kwargs:
            kwargs["num_labels"] = 2  # the paper's softmax over (fake, real)
        super().__init__(pad_token_id=pad_token_id, **kwargs)


class Highway(nn.Module):
    """y = t * relu(W_h x) + (1 - t) * x, with t = sigmoid(W_t x + b_t)."""

    def __init__(self, size: int):
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.gate(features))
        return gate * F.relu(self.transform(features)) + (1.0 - gate) * features


class CNNPreTrainedModel(PreTrainedModel):
    config_class = CNNDiscriminatorConfig
    base_model_prefix = "seqgan_cnn"
    main_input_name = "input_ids"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Embedding)):
            init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                init.constant_(module.bias, 0.1 if isinstance(module, nn.Conv1d) else 0.0)
        if isinstance(module, Highway):
            # A negative gate bias starts the highway close to the identity (carry), as in the paper's code.
            init.constant_(module.gate.bias, -2.0)


class CNNForSequenceClassification(CNNPreTrainedModel):
    """The paper's CNN discriminator. Logit(s) say how likely a sequence is real."""

    def __init__(self, config: CNNDiscriminatorConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, count, width)
            for width, count in zip(config.filter_sizes, config.num_filters)
        )
        total_filters = sum(config.num_filters)
        self.highway = Highway(total_filters)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(total_filters, config.num_labels)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        """Classify `input_ids` [B, L]; padded positions (`attention_mask == 0`) embed to zeros."""
        min_length = max(self.config.filter_sizes)
        if input_ids.shape[1] < min_length:
            pad_id = self.config.pad_token_id if self.config.pad_token_id is not None else 0
            padding = input_ids.new_full((input_ids.shape[0], min_length - input_ids.shape[1]), pad_id)
            input_ids = torch.cat([input_ids, padding], dim=1)
            if attention_mask is not None:
                attention_mask = torch.cat([attention_mask, torch.zeros_like(padding)], dim=1)
        embeds = self.embed_tokens(input_ids)
        if attention_mask is not None:
            embeds = embeds * attention_mask.unsqueeze(-1).to(embeds.dtype)
        embeds = embeds.transpose(1, 2)  # [B, E, L] for Conv1d
        # Max-over-time keeps each filter's strongest match anywhere in the sequence.
        pooled = torch.cat([F.relu(conv(embeds)).amax(dim=2) for conv in self.convs], dim=1)
        features = self.dropout(self.highway(pooled))
        logits = self.classifier(features)

        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.binary_cross_entropy_with_logits(logits.squeeze(-1), labels.to(logits.dtype))
            else:
                loss = F.cross_entropy(logits, labels.long())
            loss = loss + self.regularization_loss()
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def regularization_loss(self) -> torch.Tensor:
        """The paper's L2 penalty on the output layer: lambda * (|W|^2 + |b|^2) / 2."""
        l2 = self.classifier.weight.pow(2).sum() + self.classifier.bias.pow(2).sum()
        return self.config.l2_reg_lambda * 0.5 * l2
