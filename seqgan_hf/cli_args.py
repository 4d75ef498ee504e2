"""The `seqgan-hf train` arguments outside `SeqGANConfig` (`ScriptArguments`), and the embedded default recipe."""

from __future__ import annotations

from dataclasses import dataclass, field

from .models.cnn import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS

# The demo: the paper's oracle task with the discriminator's work shrunk to fit a few CPU minutes.
QUICK_DEFAULTS: dict = {
    "task": "oracle",
    "oracle_seed": 0,
    "num_train": 5000,
    "num_test": 5000,
    "eval_samples": 5000,
    "discriminator_filter_sizes": [2, 3, 4, 5, 10, 20],
    "discriminator_num_filters": [50, 50, 50, 50, 40, 40],
    "output_dir": "outputs/oracle_quick",
    "mle_epochs": 20,
    "discriminator_pretrain_rounds": 5,
    "discriminator_pretrain_epochs": 1,
    "num_negatives": 2000,
    "adversarial_iterations": 30,
    "d_steps": 1,
    "d_epochs": 1,
    "rollout_num": 16,
    "logging_steps": 50,
    "seed": 0,
}


@dataclass
class ScriptArguments:
    """What to train on, and which models: everything outside `SeqGANConfig`."""

    config: str | None = field(default=None, metadata={"help": "YAML recipe giving defaults for any field."})
    task: str = field(default="oracle", metadata={
        "help": "'oracle' (the paper's synthetic task), 'text', or 'prompts' (prompt-completion pairs: completions "
        "conditioned on prompts)."})
    generator: str = field(
        default="lstm", metadata={"help": "'lstm' (the paper's LSTM, built from config) or a causal LM path/Hub id."}
    )
    discriminator: str = field(
        default="cnn", metadata={"help": "'cnn' (the paper's CNN, built from config) or a classifier path/Hub id."}
    )
    tokenizer: str | None = field(
        default=None, metadata={"help": "Generator tokenizer (text / prompts task). Default: one built from "
                                "--train_file."}
    )
    tokenizer_type: str = field(default="word", metadata={"help": "A built tokenizer: 'word' (the paper) or 'bpe'."})
    tokenizer_vocab_size: int = field(default=30_000, metadata={"help": "A built tokenizer's largest vocabulary."})
    tokenizer_min_frequency: int = field(default=1, metadata={"help": "A built tokenizer keeps tokens seen this often."})
    eval_file: str | None = field(
        default=None, metadata={"help": "Held-out text or pairs (same formats as --train_file): BLEU, Self-BLEU "
                                "and NLL."}
    )
    validation_split_percentage: float = field(
        default=5,
        metadata={"help": "Without --eval_file: the percentage of --train_file held out for evaluation (0: none)."},
    )
    discriminator_tokenizer: str | None = field(
        default=None, metadata={"help": "The discriminator's own tokenizer, if it differs from the generator's."}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training data: a text file (one example per line), a JSONL with an 'input_ids' or 'text' "
            "field, or a save_to_disk directory. For the oracle task it replaces the sampled oracle data. For "
            "--task prompts: a JSONL (or saved dataset) with 'prompt' and 'completion' fields."
        },
    )
    # oracle task
    oracle_seed: int = field(default=0, metadata={"help": "Seed of the oracle's N(0,1) parameters and its data."})
    oracle_params: str | None = field(default=None, metadata={"help": "Oracle .npz in the paper's layout."})
    vocab_size: int = field(default=5000, metadata={"help": "Oracle vocabulary size."})
    num_train: int = field(default=10_000, metadata={"help": "Oracle training sequences."})
    num_test: int = field(default=10_000, metadata={"help": "Held-out oracle sequences for NLL_test."})
    eval_samples: int = field(
        default=10_000, metadata={"help": "Generator samples per evaluation: NLL_oracle, or BLEU / Self-BLEU (text)."}
    )
    # the paper's models
    generator_embedding_dim: int = field(default=32, metadata={"help": "LSTM generator embedding size."})
    generator_hidden_dim: int = field(default=32, metadata={"help": "LSTM generator hidden size."})
    discriminator_embedding_dim: int = field(default=64, metadata={"help": "CNN discriminator embedding size."})
    discriminator_filter_sizes: list[int] = field(
        default_factory=lambda: list(PAPER_FILTER_SIZES), metadata={"help": "CNN filter widths."}
    )
    discriminator_num_filters: list[int] = field(
        default_factory=lambda: list(PAPER_NUM_FILTERS), metadata={"help": "CNN filters per width."}
    )
    discriminator_num_labels: int = field(default=2, metadata={"help": "1 (sigmoid) or 2 (softmax)."})
    # LoRA on a pretrained generator (peft), as TRL's ModelConfig names it
    use_peft: bool = field(default=False, metadata={"help": "Train a LoRA adapter on --generator (needs peft)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA branch (0: sampling and the "
                                                                 "g-step see the same policy)."})
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "Module names to adapt, e.g. q_proj v_proj, or all-linear (default: "
                                        "peft's choice for the architecture)."}
    )
