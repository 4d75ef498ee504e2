"""Builders shared by the tests: tiny models from configs, a corpus and tokenizers trained on it (no downloads).

Every builder seeds torch right before it creates the weights (generators with 0 and classifiers with 1 unless
`seed` says otherwise), so a test gets the same model each time; tests compare against fixed behaviour.
Beyond the tiny defaults, only the config fields a caller passes are set: the library's other defaults (e.g.
GPT-2's EOS id) stay as they are.
"""

from __future__ import annotations

import torch

CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the bird sang a song",
    "my cat likes the warm sun",
    "a small dog sat by the door",
    "the sun is warm today",
    "birds fly over the park",
    "the dog and the cat play",
] * 8


def train_tokenizer(kind: str = "wordlevel"):
    """A PreTrainedTokenizerFast trained on CORPUS: word-level (G) or WordPiece (a different D tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]
    if kind == "wordlevel":
        tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        trainer = trainers.WordLevelTrainer(special_tokens=specials)
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=60, special_tokens=specials)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", unk_token="[UNK]"
    )


def lm_token_ids(tokenizer) -> dict[str, int]:
    """Config fields tying a generator to `tokenizer`: vocabulary size and BOS / EOS / pad ids."""
    return dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def classifier_token_ids(tokenizer) -> dict[str, int]:
    """Config fields tying a classifier to `tokenizer`: vocabulary size and pad id."""
    return dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)


def quick_config(tmp_path, **overrides):
    """A SeqGANConfig small enough for a unit test: every phase runs, for a step or two."""
    from seqgan_hf import SeqGANConfig

    values = dict(
        output_dir=str(tmp_path / "out"), sequence_length=6, per_device_train_batch_size=8, mle_epochs=1,
        discriminator_pretrain_rounds=1, discriminator_pretrain_epochs=1, num_negatives=16, adversarial_iterations=2,
        d_steps=1, d_epochs=1, rollout_num=2, discriminator_batch_size=8, disable_tqdm=True, seed=0,
        mle_learning_rate=0.01, learning_rate=0.01, discriminator_learning_rate=0.01,
    )
    values.update(overrides)
    return SeqGANConfig(**values)


# -- the paper's models -------------------------------------------------------------------------------------------


def tiny_lstm(vocab_size: int = 40, *, embedding_dim: int = 8, hidden_dim: int = 8, seed: int = 0, **config):
    """The paper's LSTM generator, 8-wide unless told otherwise."""
    from seqgan_hf import LSTMConfig, LSTMForCausalLM

    torch.manual_seed(seed)
    return LSTMForCausalLM(LSTMConfig(vocab_size=vocab_size, embedding_dim=embedding_dim, hidden_dim=hidden_dim,
                                      **config))


def tiny_cnn(vocab_size: int = 40, num_labels: int = 2, *, filter_sizes=(1, 2, 3), num_filters=(4, 4, 4),
             seed: int = 1, **config):
    """The paper's CNN discriminator with 8-dim embeddings and 4 filters per width."""
    from seqgan_hf import CNNDiscriminatorConfig, CNNForSequenceClassification

    torch.manual_seed(seed)
    return CNNForSequenceClassification(
        CNNDiscriminatorConfig(
            vocab_size=vocab_size, embedding_dim=8, filter_sizes=list(filter_sizes), num_filters=list(num_filters),
            num_labels=num_labels, **config,
        )
    )


# -- transformers: 16-wide, 2 heads -------------------------------------------------------------------------------


def tiny_gpt2(vocab_size: int, *, n_layer: int = 1, n_positions: int = 64, seed: int = 0, **config):
    """A GPT2LMHeadModel."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=n_layer, n_head=2,
                                      n_positions=n_positions, **config))


def tiny_gpt2_classifier(vocab_size: int, num_labels: int, *, n_layer: int = 1, n_positions: int = 128,
                         seed: int = 1, model_class=None, **config):
    """A GPT2ForSequenceClassification (or `model_class`, a subclass of it)."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=n_layer, n_head=2, n_positions=n_positions,
                        num_labels=num_labels, **config)
    return (model_class or GPT2ForSequenceClassification)(config)


def tiny_llama(vocab_size: int, *, num_hidden_layers: int = 1, max_position_embeddings: int = 64, seed: int = 0,
               **config):
    """A LlamaForCausalLM with one key/value head (grouped-query attention)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=num_hidden_layers,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_position_embeddings, **config,
    ))


def tiny_qwen2(vocab_size: int, *, num_hidden_layers: int = 1, max_position_embeddings: int = 64, seed: int = 0,
               **config):
    """A Qwen2ForCausalLM (biased q/k/v projections, grouped-query attention)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=num_hidden_layers,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True, **config,
    ))


def tiny_llama_classifier(vocab_size: int, num_labels: int, *, num_hidden_layers: int = 1, seed: int = 1,
                          **config):
    """A LlamaForSequenceClassification with one key/value head."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(seed)
    return LlamaForSequenceClassification(LlamaConfig(
        vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=num_hidden_layers,
        num_attention_heads=2, num_key_value_heads=1, num_labels=num_labels, **config,
    ))


def tiny_bert_classifier(vocab_size: int, num_labels: int, *, max_position_embeddings: int = 128, seed: int = 1,
                         **config):
    """A one-layer BertForSequenceClassification."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(
        vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=max_position_embeddings, num_labels=num_labels, **config,
    ))


def stop_at(step: int):
    """A callback that stops training after training unit `step` (e.g. to leave a checkpoint to resume from)."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                control.should_training_stop = True

    return StopAt()
