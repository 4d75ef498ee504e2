"""`SeqGANConfig`: every knob of SeqGAN training, as flat `TrainingArguments` fields.

Defaults follow the paper's synthetic-oracle protocol (Yu et al., 2017; `docs/PROTOCOL.md`) except where
a field says otherwise. `TrainingArguments` fields keep their usual meaning; a few defaults are changed to
the paper's values (batch 64, Adam lr 0.01, constant schedule, gradient-norm clip 5.0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transformers import TrainingArguments

from .data import SEQUENCE_OVERFLOW

ROLLOUT_POLICIES = ("generator", "delayed")
REWARD_BASELINES = ("none", "batch_mean", "moving_average")


@dataclass
class SeqGANConfig(TrainingArguments):
    """Configuration of [`SeqGANTrainer`].

    Training runs three phases, each of which can be switched off by setting its length to 0:

    1. **MLE pretraining** of the generator for `mle_epochs` epochs over `train_dataset`.
    2. **Discriminator pretraining**: `discriminator_pretrain_rounds` rounds, each on `num_negatives` fresh
       generator samples plus as many real sequences, for `discriminator_pretrain_epochs` epochs.
    3. **Adversarial training**: `adversarial_iterations` iterations of `g_steps` policy-gradient updates
       (rewards from `rollout_num` Monte Carlo rollouts per token) and `d_steps` discriminator updates
       of `d_epochs` epochs each on fresh negatives.

    `learning_rate` is the generator's learning rate in the adversarial phase; `mle_learning_rate` (default:
    the same) in MLE pretraining. `per_device_train_batch_size` is the generator's batch (MLE batches and
    sequences sampled per g-step) on each process.

    **Batch sizes under data parallelism** (`accelerate launch` with K processes), following the Hugging Face
    convention that `per_device_*` sizes are per process: the global generator batch (one MLE update, one g-step)
    is `per_device_train_batch_size * K`, and `discriminator_batch_size` is likewise per process. Each process
    samples and rolls out its own `per_device_train_batch_size` sequences (from its own random stream) and the
    gradients are averaged across processes, so one update sees exactly that global batch; the logs report it as
    `mle/global_batch_size` and `adversarial/global_batch_size`. To keep a recipe's global batch when changing K,
    divide `per_device_train_batch_size` by K (`recipes/oracle_quick_2proc.yaml`: 32 x 2 = the paper's 64).
    `num_negatives`, in contrast, is global: each process samples `ceil(num_negatives / K)` of them.

    **Checkpoints** (`save_strategy="steps"`, `save_steps` in training units) hold everything needed to resume
    bitwise: `train(resume_from_checkpoint=True)` (or a `checkpoint-<step>` path; also read from the
    `resume_from_checkpoint` field when `train()` is given none) continues in the same phase and step.
    """

    # ---- overridden TrainingArguments defaults (the paper's values) -------------------------------
    output_dir: str | None = field(default="outputs/seqgan", metadata={"help": "Where models and checkpoints go."})
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Let a fresh run start in an output_dir that holds an earlier run's checkpoints or results: its "
            "checkpoints are deleted (its saved model is replaced when this run saves). Without it such a folder "
            "is refused, so nothing is mixed or lost."
        },
    )
    per_device_train_batch_size: int = field(
        default=64, metadata={"help": "Generator batch per process: MLE batches and sequences per g-step."}
    )
    learning_rate: float = field(default=0.01, metadata={"help": "Generator learning rate in adversarial training."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Learning-rate schedule of every phase."})
    max_grad_norm: float = field(default=5.0, metadata={"help": "Gradient-norm clip for generator and discriminator."})
    logging_steps: float = field(default=10, metadata={"help": "Log every N training units (see SeqGANTrainer)."})
    save_strategy: str = field(default="no", metadata={"help": "Checkpoint strategy: 'no' or 'steps'."})
    dataloader_pin_memory: bool = field(
        default=False, metadata={"help": "Pin MLE batches in memory (token ids are tiny; off by default)."}
    )
    log_completions: bool = field(
        default=False,
        metadata={
            "help": "At every logging step of the adversarial phase, show the first num_completions_to_log sequences "
            "this process sampled in the unit's last g-step, with each token's Monte Carlo reward and the "
            "discriminator's P(real) of the whole sequence: a table sent to the trackers of report_to "
            "(TensorBoard text, a wandb / trackio Table) and a page output_dir/completions/step_<step>.html (tokens "
            "shaded by reward, white 0 to green 1) listed in completions/index.html. See seqgan_hf.completions."
        },
    )
    num_completions_to_log: int = field(
        default=8, metadata={"help": "Sequences shown per logging step when log_completions is on."}
    )

    # ---- loading models given as paths / Hub ids ---------------------------------------------------
    model_init_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "Keyword arguments of from_pretrained when `model` is a path or Hub id (a dict, or a JSON "
            "string on the command line), e.g. {\"revision\": \"main\", \"attn_implementation\": \"sdpa\"}. "
            "Weights load in float32 unless `dtype` is given: bf16/fp16 training comes from mixed precision "
            "(bf16=True), not from the checkpoint's stored dtype."
        },
    )
    discriminator_init_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": "As model_init_kwargs, for a discriminator given as a path or Hub id."},
    )

    # ---- sequences ---------------------------------------------------------------------------------
    sequence_length: int = field(
        default=20,
        metadata={
            "help": "Length T of generated sequences (tokens after the start token). Longer training "
            "sequences are truncated to T with a warning."
        },
    )
    sequence_overflow: str = field(
        default="truncate",
        metadata={
            "help": "Training sequences longer than sequence_length: 'truncate' (cut to it, with a warning that "
            "counts them), 'drop' (leave them out, with a warning) or 'error' (refuse the data)."
        },
    )
    max_prompt_length: int | None = field(
        default=None,
        metadata={
            "help": "Prompt-completion data (`prompt` / `completion` columns): the most prompt tokens kept (the start "
            "token not counted). Longer prompts follow prompt_overflow. None: the longest training prompt. The "
            "discriminator reads every (prompt, completion) pair at this width plus sequence_length."
        },
    )
    prompt_overflow: str = field(
        default="truncate",
        metadata={
            "help": "Prompts longer than max_prompt_length: 'truncate' (keep their end, the tokens next to the "
            "completion, with a warning that counts them), 'drop' (leave those pairs out, with a warning) or "
            "'error' (refuse the data)."
        },
    )
    append_eos: bool = field(
        default=True,
        metadata={
            "help": "End every training sequence with the EOS token, so the generator learns where text stops "
            "(variable-length text). False: the paper's fixed-length setting, with no EOS anywhere: every "
            "training sequence must have exactly sequence_length tokens, and samples are never cut (e.g. the "
            "music recipe; with EOS, a discriminator can tell fake from real by where EOS falls)."
        },
    )
    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Sampling temperature of the policy. The policy is the distribution sequences and rollouts are "
            "sampled from: softmax of logits / temperature, truncated by top_k and top_p and renormalised; the "
            "policy gradient's log-probabilities are taken under exactly that distribution."
        },
    )
    top_k: int = field(
        default=0,
        metadata={"help": "Sample only among the top_k most likely tokens at each position (0: no top-k cut)."},
    )
    top_p: float = field(
        default=1.0,
        metadata={"help": "Nucleus sampling: the smallest set of most likely tokens with mass >= top_p (1.0: none)."},
    )
    generation_kwargs: dict | str | None = field(
        default=None,
        metadata={
            "help": "Training-time sampling settings as generate() keyword arguments (a dict, or JSON on the command "
            "line): temperature, top_k, top_p (do_sample must stay true). They set the fields of the same names; "
            "any other key is refused, since SeqGAN's sampler would not apply it."
        },
    )
    overwrite_generation_config: bool = field(
        default=False,
        metadata={
            "help": "Also write the training-time sampling settings into the saved generator's "
            "generation_config.json, so a plain generate() samples as training did. Default: the model's own "
            "generation_config is saved as given, and the settings go beside it to "
            "training_generation_config.json (read by seqgan-hf sample and evaluate)."
        },
    )
    bos_token_id: int | None = field(
        default=None,
        metadata={"help": "Start token fed before every sequence. Default: the generator's or tokenizer's BOS."},
    )
    disable_dropout: bool = field(
        default=True,
        metadata={"help": "Set every dropout of the generator to 0 so sampling and the g-step use the same policy."},
    )

    # ---- phase 1: MLE pretraining ------------------------------------------------------------------
    mle_epochs: int = field(default=120, metadata={"help": "Epochs of MLE pretraining (0 skips the phase)."})
    mle_learning_rate: float | None = field(
        default=None, metadata={"help": "Generator learning rate in MLE pretraining (default: learning_rate)."}
    )

    # ---- phase 2: discriminator pretraining --------------------------------------------------------
    discriminator_pretrain_rounds: int = field(
        default=50, metadata={"help": "Rounds of discriminator pretraining, each on fresh negatives (0 skips)."}
    )
    discriminator_pretrain_epochs: int = field(default=3, metadata={"help": "Epochs per pretraining round."})
    num_negatives: int | None = field(
        default=None,
        metadata={
            "help": "Generated sequences per discriminator round or d-step, matched by as many real ones "
            "(default: the size of train_dataset, as in the paper)."
        },
    )
    discriminator_learning_rate: float = field(default=1e-4, metadata={"help": "Discriminator Adam learning rate."})
    discriminator_weight_decay: float = field(
        default=0.0, metadata={"help": "Decoupled weight decay of the discriminator optimizer (AdamW)."}
    )
    discriminator_batch_size: int = field(default=64, metadata={"help": "Discriminator batch per process."})
    discriminator_max_length: int | None = field(
        default=None,
        metadata={"help": "Truncation length of re-tokenized text when D has its own tokenizer (default: 4*T; with "
                  "prompts 4 * (max prompt tokens + T)). Training pairs longer than it are truncated with a warning, "
                  "or refused with prompt_overflow='error'."},
    )

    # ---- phase 3: adversarial training -------------------------------------------------------------
    adversarial_iterations: int = field(
        default=200, metadata={"help": "Adversarial iterations (0 skips the phase)."}
    )
    g_steps: int = field(default=1, metadata={"help": "Policy-gradient updates of G per iteration."})
    d_steps: int = field(default=5, metadata={"help": "Discriminator updates (fresh negatives each) per iteration."})
    d_epochs: int = field(default=3, metadata={"help": "Epochs over each d-step's data."})
    rollout_num: int = field(default=16, metadata={"help": "Monte Carlo rollouts N per token."})
    reward_stride: int = field(
        default=1,
        metadata={
            "help": "k: Monte Carlo rollouts only after completion prefixes of k, 2k, 3k... tokens; every other token "
            "takes the reward of the next rolled-out prefix (or the final reward). 1: every token, as in the paper. "
            "k cuts the rollout work about k-fold for long completions; see the README for what it approximates. "
            "k >= sequence_length: no rollouts, every token takes the final reward."
        },
    )
    rollout_policy: str = field(
        default="generator",
        metadata={
            "help": "Who completes the rollouts: 'generator' (G itself, as the public code in effect does) or "
            "'delayed' (a copy of G, moved towards G after each g-step with rollout_update_rate, as in the paper)."
        },
    )
    rollout_update_rate: float = field(
        default=0.8,
        metadata={"help": "Delayed policy update: theta_roll <- rate * theta_roll + (1 - rate) * theta_G."},
    )
    rollout_batch_size: int = field(
        default=4096,
        metadata={
            "help": "Rows per generator forward during rollouts; bounds memory, never changes results. On CPU the "
            "engine further caps each forward at about 4M logits (rows x vocabulary: allocations glibc reuses)."
        },
    )
    score_batch_size: int = field(
        default=4096,
        metadata={
            "help": "Most sequences per discriminator forward when scoring rollouts; bounds memory. It never changes "
            "results with full discriminator forwards; with discriminator_prefix_cache, short forwards can round "
            "differently "
            "(last float bits). On CPU the engine further caps each forward at about 8192 tokens (stays in cache)."
        },
    )
    discriminator_prefix_cache: bool = field(
        default=True,
        metadata={
            "help": "Score rollouts with a causal discriminator (a decoder classifier returning a KV cache, e.g. "
            "GPT2ForSequenceClassification) by encoding each sampled sequence's prefixes once and feeding every "
            "completion only its own tokens: about half the discriminator's work, same scores. Checked against "
            "full forwards on first use and off, with a warning, where they disagree; other discriminators (the "
            "paper's CNN, encoders, a separate tokenizer) always get full forwards. False: always full forwards."
        },
    )
    reward_weights: list[float] | None = field(
        default=None,
        metadata={
            "help": "Weights of the trainer's reward_funcs, one each (default: equal). The reward of a complete "
            "sequence is their weighted mean, so it stays in [0, 1]."
        },
    )
    beta: float = field(
        default=0.0,
        metadata={
            "help": "Weight of a per-token KL penalty KL(G || G_ref) in the g-step loss (0: none, as in the paper). "
            "G_ref is a frozen copy of the generator as adversarial training starts; the KL is estimated on the "
            "sampled tokens (k3: exp(r) - r - 1) and logged as adversarial/kl. Keeps a pretrained LM near where "
            "it started."
        },
    )
    reward_baseline: str = field(
        default="none",
        metadata={
            "help": "'none' (the paper), 'batch_mean' (subtract the batch's mean reward at each position) or "
            "'moving_average' (subtract an exponential moving average of it, decay baseline_decay)."
        },
    )
    baseline_decay: float = field(default=0.9, metadata={"help": "Decay of the 'moving_average' baseline."})

    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the MLE collator reads the `length` column."}
    )

    def __post_init__(self) -> None:
        if self.mle_learning_rate is None:
            self.mle_learning_rate = self.learning_rate
        for name in ("model_init_kwargs", "discriminator_init_kwargs", "generation_kwargs"):
            setattr(self, name, _as_dict(name, getattr(self, name)))
        self._apply_generation_kwargs()
        super().__post_init__()
        self._validate()
        self._refuse_unhonoured_fields()

    def _apply_generation_kwargs(self) -> None:
        """Move `generation_kwargs` onto the sampling fields; refuse keys the sampler would not honour."""
        defaults = {"temperature": 1.0, "top_k": 0, "top_p": 1.0}
        for key, value in (self.generation_kwargs or {}).items():
            if key == "do_sample":
                if value is not True:
                    raise ValueError(f"SeqGANConfig.generation_kwargs: do_sample={value!r}. SeqGAN samples its "
                                     "policy (a REINFORCE estimate needs samples); drop do_sample.")
            elif key not in defaults:
                raise ValueError(f"SeqGANConfig.generation_kwargs: {key!r} is not applied by SeqGAN's sampler. "
                                 "Use only temperature, top_k and top_p.")
            elif getattr(self, key) not in (defaults[key], value):
                raise ValueError(f"SeqGANConfig.generation_kwargs: {key}={value!r} contradicts {key}="
                                 f"{getattr(self, key)!r}. Set it in one place only.")
            else:
                setattr(self, key, value)

    def _refuse_unhonoured_fields(self) -> None:
        """Refuse every `TrainingArguments` field set to something the SeqGAN loop would not do."""
        for name, is_refused, fix in _UNHONOURED_FIELDS:
            value = getattr(self, name, None)
            value = getattr(value, "value", value)  # enums by their value
            if is_refused(value):
                raise ValueError(f"SeqGANConfig.{name}: got {value!r}, which SeqGANTrainer does not honour. {fix}")

    def _validate(self) -> None:
        def fail(name: str, problem: str, fix: str) -> None:
            raise ValueError(f"SeqGANConfig.{name}: {problem}. {fix}")

        for name in (
            "sequence_length", "rollout_num", "rollout_batch_size", "score_batch_size", "discriminator_batch_size",
            "per_device_train_batch_size", "reward_stride",
        ):
            if getattr(self, name) < 1:
                fail(name, f"got {getattr(self, name)}", "Set it to a positive integer.")
        for name in (
            "mle_epochs",
            "discriminator_pretrain_rounds",
            "discriminator_pretrain_epochs",
            "adversarial_iterations",
            "g_steps",
            "d_steps",
            "d_epochs",
        ):
            if getattr(self, name) < 0:
                fail(name, f"got {getattr(self, name)}", "Use 0 to skip, or a positive count.")
        if self.temperature <= 0:
            fail("temperature", f"got {self.temperature}", "Use a positive temperature (1.0 samples the model as is).")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 0:
            fail("top_k", f"got {self.top_k!r}", "Use 0 (no top-k cut) or a positive number of tokens, e.g. 50.")
        if not 0.0 < self.top_p <= 1.0:
            fail("top_p", f"got {self.top_p}", "Use a value in (0, 1], e.g. 0.95 (1.0: no nucleus cut).")
        if self.sequence_overflow not in SEQUENCE_OVERFLOW:
            fail("sequence_overflow", f"got {self.sequence_overflow!r}", f"Choose one of {SEQUENCE_OVERFLOW}.")
        if self.prompt_overflow not in SEQUENCE_OVERFLOW:
            fail("prompt_overflow", f"got {self.prompt_overflow!r}", f"Choose one of {SEQUENCE_OVERFLOW}.")
        if self.max_prompt_length is not None and self.max_prompt_length < 0:
            fail("max_prompt_length", f"got {self.max_prompt_length}",
                 "Use 0 or more prompt tokens, or None for the longest training prompt.")
        if self.rollout_policy not in ROLLOUT_POLICIES:
            fail("rollout_policy", f"got {self.rollout_policy!r}", f"Choose one of {ROLLOUT_POLICIES}.")
        if not 0.0 <= self.rollout_update_rate <= 1.0:
            fail("rollout_update_rate", f"got {self.rollout_update_rate}", "Use a value in [0, 1] (the paper: 0.8).")
        if self.reward_baseline not in REWARD_BASELINES:
            fail("reward_baseline", f"got {self.reward_baseline!r}", f"Choose one of {REWARD_BASELINES}.")
        if self.beta < 0:
            fail("beta", f"got {self.beta}", "Use 0 (no KL penalty) or a positive weight, e.g. 0.04.")
        if not 0.0 <= self.baseline_decay < 1.0:
            fail("baseline_decay", f"got {self.baseline_decay}", "Use a value in [0, 1).")
        if self.num_negatives is not None and self.num_negatives < 1:
            fail("num_negatives", f"got {self.num_negatives}", "Use a positive count, or None for the dataset size.")
        if self.discriminator_learning_rate <= 0 or self.learning_rate <= 0 or self.mle_learning_rate <= 0:
            fail("learning_rate", "learning rates must be positive", "Set learning_rate, mle_learning_rate and "
                 "discriminator_learning_rate to positive values.")
        if self.adversarial_iterations > 0:
            if self.g_steps == 0 and self.d_steps == 0:
                fail("g_steps", "adversarial_iterations > 0 but g_steps = d_steps = 0, so nothing would train",
                     "Set g_steps >= 1 (and d_steps, usually 5), or adversarial_iterations=0.")
            if self.d_steps > 0 and self.d_epochs == 0:
                fail("d_epochs", "d_steps > 0 but d_epochs = 0", "Set d_epochs >= 1 or d_steps = 0.")
        if self.discriminator_pretrain_rounds > 0 and self.discriminator_pretrain_epochs == 0:
            fail("discriminator_pretrain_epochs", "pretraining rounds > 0 but 0 epochs per round",
                 "Set discriminator_pretrain_epochs >= 1 or discriminator_pretrain_rounds = 0.")
        if self.reward_weights is not None:
            if not self.reward_weights or any(weight < 0 for weight in self.reward_weights) or \
                    sum(self.reward_weights) <= 0:
                fail("reward_weights", f"got {self.reward_weights}",
                     "Give one non-negative weight per reward function, with a positive sum.")
        if not isinstance(self.log_completions, bool):
            fail("log_completions", f"got {self.log_completions!r}", "Use True or False.")
        if self.log_completions and (not isinstance(self.num_completions_to_log, int)
                                     or isinstance(self.num_completions_to_log, bool)
                                     or self.num_completions_to_log < 1):
            fail("num_completions_to_log", f"got {self.num_completions_to_log!r} with log_completions on",
                 "Use a positive number of sequences to show, e.g. 8.")
        if self.log_completions and getattr(self.logging_strategy, "value", self.logging_strategy) == "no":
            fail("log_completions", "is on but logging_strategy='no': completions are shown at logging steps",
                 "Set logging_strategy='steps' (and logging_steps), or log_completions=False.")
        if self.gradient_accumulation_steps < 1:
            fail("gradient_accumulation_steps", f"got {self.gradient_accumulation_steps}",
                 "Use 1 (no accumulation) or more micro-batches per update.")


def _as_dict(name: str, value) -> dict | None:
    """A dict field given as a dict, a JSON string (command line) or None."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        import json

        try:
            parsed = json.loads(value)
        except ValueError as error:
            raise ValueError(f"SeqGANConfig.{name}: {value!r} is not JSON ({error}). Write a JSON object, e.g. "
                             '\'{"dtype": "bfloat16"}\'.') from error
        if isinstance(parsed, dict):
            return parsed
    raise ValueError(f"SeqGANConfig.{name}: got {value!r}; give a dict of from_pretrained keyword arguments.")


def _set(value) -> bool:
    return value not in (None, False, "", [], {}, 0)


# TrainingArguments fields SeqGANTrainer's loop does not honour, when set, with what to do instead. Every other
# field works as in transformers.Trainer (optimizer, scheduler, precision, logging, evaluation, saving, Hub,
# dataloader and distributed settings); `tests/test_bad_inputs.py` goes through the list.
_UNHONOURED_FIELDS: list[tuple[str, Callable[[object], bool], str]] = [
    ("num_train_epochs", lambda v: v != 3.0, "The phases have their own lengths: set mle_epochs, "
     "discriminator_pretrain_rounds and adversarial_iterations."),
    ("max_steps", lambda v: v is not None and v > 0, "Set mle_epochs, discriminator_pretrain_rounds and "
     "adversarial_iterations (progress is counted in training units, see SeqGANTrainer)."),
    ("logging_strategy", lambda v: v == "epoch", "Use logging_strategy='steps' with logging_steps in training "
     "units (only the MLE phase has epochs)."),
    ("eval_strategy", lambda v: v == "epoch", "Use eval_strategy='steps' with eval_steps in training units "
     "(the discriminator and adversarial phases have no epochs); every phase also ends with an evaluation."),
    ("save_strategy", lambda v: v in ("epoch", "best"), "Use save_strategy='steps' with save_steps in training "
     "units."),
    ("save_only_model", _set, "SeqGAN checkpoints always hold both models, every optimizer and the RNG states "
     "(what a bitwise resume needs); call save_model() for the models alone."),
    ("save_on_each_node", _set, "Only the main process writes checkpoints; use a filesystem every node sees."),
    ("enable_jit_checkpoint", _set, "Checkpoints are written at save_steps; lower save_steps to lose less."),
    ("load_best_model_at_end", _set, "Not implemented: keep the checkpoints (save_total_limit) and load the one "
     "you want, e.g. by its eval metrics in trainer_state.json."),
    ("metric_for_best_model", _set, "Best-model tracking is not implemented; leave it unset."),
    ("restore_callback_states_from_checkpoint", _set, "Callback states are not restored on resume; leave it False."),
    ("ignore_data_skip", _set, "A resume replays the MLE batches it skips (that keeps it bitwise); leave it False."),
    ("torch_compile", _set, "Not supported by the SeqGAN loop: rollouts call the models outside forward(), one "
     "step at a time with a new prefix length each step, so a compiled model would recompile on nearly every "
     "call; leave it False (torch_compile_backend / torch_compile_mode turn it on too)."),
    ("use_liger_kernel", _set, "Not supported by the SeqGAN loop; leave it False."),
    ("neftune_noise_alpha", _set, "NEFTune noise is not applied by the SeqGAN loop; leave it unset."),
    ("torch_empty_cache_steps", _set, "Not applied by the SeqGAN loop; leave it unset."),
    ("auto_find_batch_size", _set, "Not applied by the SeqGAN loop; set per_device_train_batch_size yourself."),
    ("include_num_input_tokens_seen", lambda v: v not in (False, "no", None), "Token counts are not tracked by the "
     "SeqGAN loop; leave it unset."),
    ("optim_target_modules", _set, "Optimizers restricted to target modules (GaLore, APOLLO) are not supported; "
     "use peft for parameter-efficient training."),
    ("debug", _set, "Trainer debug modes are not applied by the SeqGAN loop; leave it unset."),
    ("remove_unused_columns", _set, "The MLE collator reads the `length` column; leave it False."),
]
