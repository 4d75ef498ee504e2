"""The SeqGAN paper's LSTM language model, as a transformers causal LM.

One single-layer LSTM (no peepholes) over a token embedding, with a linear read-out to the vocabulary.
It serves both as the generator G and as the synthetic oracle (same shape, different init scale).

The gate equations follow the paper's public code (docs/PROTOCOL.md); we store them in
`torch.nn.LSTM`'s fused layout (gate order i, f, g, o) so the recurrence runs in PyTorch's own kernel.
`from_oracle_npz` maps the paper's 15 named arrays onto that layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast


class LSTMConfig(PretrainedConfig):
    """Configuration of [`LSTMForCausalLM`].

    Args:
        vocab_size: number of tokens (the paper: 5000).
        embedding_dim: token embedding size (32).
        hidden_dim: LSTM state size (32).
        sequence_length: sequence length the model is trained to generate (20), excluding the start token.
        init_std: every parameter is drawn from N(0, init_std**2): 0.1 for the generator, 1.0 for the oracle.
        bos_token_id: the start token fed as the first input (token 0 in the paper; it may also be sampled).
    """

    model_type = "seqgan_lstm"

    def __init__(
        self,
        vocab_size: int = 5000,
        embedding_dim: int = 32,
        hidden_dim: int = 32,
        sequence_length: int = 20,
        init_std: float = 0.1,
        bos_token_id: int | None = 0,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
        tie_word_embeddings: bool = False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.sequence_length = sequence_length
        self.init_std = init_std
        self.tie_word_embeddings = tie_word_embeddings
        # The generation utilities read a layer count; a single LSTM layer it is.
        self.num_hidden_layers = 1
        super().__init__(
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            **kwargs,
        )


@dataclass
class LSTMState:
    """Recurrent state carried between calls (what a KV cache is for a transformer).

    `h` and `c` have shape [batch, hidden_dim]. Used as the `cache` of `generate()`.
    """

    h: torch.Tensor
    c: torch.Tensor

    def get_seq_length(self, layer_idx: int = 0) -> int:  # queried by some generation utilities
        return 0


def _left_padded_columns(attention_mask: torch.Tensor) -> int:
    """How many leading columns hold some row's left padding (a 0 before that row's first 1); 0 for none."""
    seen = attention_mask.long().cumsum(dim=1) > 0  # from each row's first unmasked column on
    padded = ~seen.all(dim=0)
    return int(padded.nonzero().max()) + 1 if bool(padded.any()) else 0


class LSTMPreTrainedModel(PreTrainedModel):
    config_class = LSTMConfig
    base_model_prefix = "seqgan_lstm"
    main_input_name = "input_ids"
    _no_split_modules: list[str] = []

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.init_std
        for param in module.parameters(recurse=False):
            init.normal_(param, mean=0.0, std=std)
        if isinstance(module, nn.LSTM):
            # The paper has one bias per gate; nn.LSTM has two, so one is kept at zero.
            init.zeros_(module.bias_hh_l0)


class LSTMForCausalLM(LSTMPreTrainedModel, GenerationMixin):
    """The paper's LSTM generator / oracle as a causal LM (`generate()`, `from_pretrained`, Trainer).

    Besides the standard `forward`, two methods expose the recurrence for Monte Carlo rollouts:
    [`prefix_states`] (the state after every prefix, one pass) and [`step`] (one token for many rows).
    """

    _tied_weights_keys: dict[str, str] = {}

    def __init__(self, config: LSTMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden_dim, batch_first=True)
        self.lm_head = nn.Linear(config.hidden_dim, config.vocab_size)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # Our cache is an LSTMState, created by forward() itself.
        return False

    def _initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> LSTMState:
        zeros = torch.zeros(batch_size, self.config.hidden_dim, device=device, dtype=dtype)
        return LSTMState(zeros, zeros.clone())

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: LSTMState | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Run the LSTM over `input_ids` starting from `cache` (zeros when None).

        `attention_mask` (over the cached and the new columns) matters only for left padding (prompts in a
        batch): a left pad leaves its row's state unchanged, so a row reads exactly its own tokens. Right padding
        needs no mask: a recurrent model reads left to right (padded positions are excluded from the loss through
        `labels=-100`).
        """
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        batch_size, length = inputs_embeds.shape[:2]
        if cache is None:
            cache = self._initial_state(batch_size, inputs_embeds.device, inputs_embeds.dtype)
        lead = _left_padded_columns(attention_mask[:, -length:]) if attention_mask is not None else 0
        parts = []
        for column in range(lead):  # columns where some row is still in its left padding: one masked step each
            hidden, (h, c) = self.lstm(inputs_embeds[:, column : column + 1], (cache.h[None], cache.c[None]))
            keep = attention_mask[:, attention_mask.shape[1] - length + column].bool()[:, None]
            cache = LSTMState(torch.where(keep, h[0], cache.h), torch.where(keep, c[0], cache.c))
            parts.append(hidden)
        h_n, c_n = cache.h[None], cache.c[None]
        if lead < length:
            hidden, (h_n, c_n) = self.lstm(inputs_embeds[:, lead:], (h_n, c_n))
            parts.append(hidden)
        hidden = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden)

        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        new_cache = LSTMState(h_n[0], c_n[0]) if use_cache is not False else None
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=new_cache)

    def prepare_inputs_for_generation(
        self,
        input_ids: torch.LongTensor,
        cache: LSTMState | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> dict:
        # With a state, only the newest token is fed (the state summarises the rest).
        if cache is not None:
            return {"input_ids": input_ids[:, -1:], "cache": cache, "use_cache": True}
        if inputs_embeds is not None:
            return {"inputs_embeds": inputs_embeds, "use_cache": use_cache}
        # The first call reads the whole (possibly left-padded) prompt: its mask holds the state over the pads.
        return {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": use_cache}

    def _reorder_cache(self, cache: LSTMState, beam_idx: torch.LongTensor) -> LSTMState:
        return LSTMState(cache.h.index_select(0, beam_idx), cache.c.index_select(0, beam_idx))

    # ---- rollout interface -------------------------------------------------------------------------

    def prefix_states(
        self, input_ids: torch.LongTensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass over `input_ids` [B, L] from `state` (zeros when None): logits [B, L, V] and the state (h, c)
        after every prefix.

        `h[:, t]` / `c[:, t]` is the state after reading `input_ids[:, : t + 1]`. nn.LSTM returns only
        h for each step, so c is recovered by running the cell step by step (cheap: H is small)."""
        embeds = self.embed_tokens(input_ids)
        if state is None:
            state = self._initial_state(input_ids.shape[0], embeds.device, embeds.dtype)
        hs, cs = [], []
        h, c = state.h.unsqueeze(0), state.c.unsqueeze(0)
        for position in range(input_ids.shape[1]):
            _, (h, c) = self.lstm(embeds[:, position : position + 1], (h, c))
            hs.append(h[0])
            cs.append(c[0])
        h_all, c_all = torch.stack(hs, dim=1), torch.stack(cs, dim=1)
        return self.lm_head(h_all), h_all, c_all

    def step(self, token_ids: torch.LongTensor, state: LSTMState | None) -> tuple[torch.Tensor, LSTMState]:
        """Feed one token per row ([R]) from `state` (zeros when None); return logits [R, V] and the new state."""
        embeds = self.embed_tokens(token_ids).unsqueeze(1)
        if state is None:
            state = self._initial_state(token_ids.shape[0], embeds.device, embeds.dtype)
        hidden, (h, c) = self.lstm(embeds, (state.h.unsqueeze(0), state.c.unsqueeze(0)))
        return self.lm_head(hidden[:, 0]), LSTMState(h[0], c[0])

    # ---- the paper's parameter layout --------------------------------------------------------------

    @classmethod
    def from_oracle_npz(cls, path: str, **config_kwargs) -> LSTMForCausalLM:
        """Build an LSTM from an `.npz` in the paper's layout (`emb`, `Wi`..`bc`, `Wo`, `bo`)."""
        arrays = np.load(path)
        required = ["emb", "Wi", "Ui", "bi", "Wf", "Uf", "bf", "Wog", "Uog", "bog", "Wc", "Uc", "bc", "Wo", "bo"]
        missing = [name for name in required if name not in arrays]
        if missing:
            raise ValueError(f"{path} lacks arrays {missing}; an oracle .npz needs all of {required}.")
        vocab_size, embedding_dim = arrays["emb"].shape
        hidden_dim = arrays["Ui"].shape[0]
        config = LSTMConfig(
            vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_dim=hidden_dim, init_std=1.0, **config_kwargs
        )
        model = cls(config)

        def tensor(name: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(arrays[name], dtype=np.float32))

        with torch.no_grad():
            model.embed_tokens.weight.copy_(tensor("emb"))
            # nn.LSTM stacks gates as (input, forget, candidate, output) and multiplies x @ W.T.
            model.lstm.weight_ih_l0.copy_(torch.cat([tensor(n) for n in ("Wi", "Wf", "Wc", "Wog")], dim=1).T)
            model.lstm.weight_hh_l0.copy_(torch.cat([tensor(n) for n in ("Ui", "Uf", "Uc", "Uog")], dim=1).T)
            model.lstm.bias_ih_l0.copy_(torch.cat([tensor(n) for n in ("bi", "bf", "bc", "bog")]))
            model.lstm.bias_hh_l0.zero_()
            model.lm_head.weight.copy_(tensor("Wo").T)
            model.lm_head.bias.copy_(tensor("bo"))
        return model

    def to_oracle_npz(self, path: str) -> None:
        """Write the parameters in the paper's `.npz` layout (inverse of `from_oracle_npz`)."""
        hidden_dim = self.config.hidden_dim
        w_ih = self.lstm.weight_ih_l0.detach().T.cpu().numpy()
        w_hh = self.lstm.weight_hh_l0.detach().T.cpu().numpy()
        bias = (self.lstm.bias_ih_l0 + self.lstm.bias_hh_l0).detach().cpu().numpy()
        arrays = {"emb": self.embed_tokens.weight.detach().cpu().numpy()}
        for index, gate in enumerate(("i", "f", "c", "og")):
            cols = slice(index * hidden_dim, (index + 1) * hidden_dim)
            arrays[f"W{gate}"] = w_ih[:, cols]
            arrays[f"U{gate}"] = w_hh[:, cols]
            arrays[f"b{gate}"] = bias[cols]
        arrays["Wo"] = self.lm_head.weight.detach().T.cpu().numpy()
        arrays["bo"] = self.lm_head.bias.detach().cpu().numpy()
        np.savez(path, **{name: np.ascontiguousarray(value, dtype=np.float32) for name, value in arrays.items()})
