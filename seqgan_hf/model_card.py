"""The model card (`README.md`) written next to a trained generator: how it was trained and what it measured."""

from __future__ import annotations

import math

from huggingface_hub import EvalResult, ModelCard, ModelCardData

CITATION = """@inproceedings{yu2017seqgan,
  title     = {SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient},
  author    = {Yu, Lantao and Zhang, Weinan and Wang, Jun and Yu, Yong},
  booktitle = {Proceedings of the Thirty-First AAAI Conference on Artificial Intelligence},
  pages     = {2852--2858},
  year      = {2017},
  eprint    = {1609.05473},
  archivePrefix = {arXiv}
}"""

BASE_TAGS = ["seqgan", "text-generation", "gan", "reinforcement-learning", "policy-gradient", "seqgan_hf"]

# The SeqGANConfig fields a reader needs to reproduce the run, in reading order.
CONFIG_FIELDS = [
    "sequence_length", "max_prompt_length", "temperature", "top_k", "top_p", "per_device_train_batch_size",
    "world_size", "seed",
    "mle_epochs", "mle_learning_rate",
    "discriminator_pretrain_rounds", "discriminator_pretrain_epochs", "num_negatives",
    "discriminator_learning_rate", "discriminator_batch_size",
    "adversarial_iterations", "g_steps", "d_steps", "d_epochs", "rollout_num", "rollout_policy",
    "rollout_update_rate", "reward_stride", "reward_baseline", "learning_rate", "max_grad_norm", "lr_scheduler_type",
]

METRIC_NAMES = {
    "nll_oracle": "NLL_oracle (oracle NLL of generator samples; lower = higher quality)",
    "nll_test": "NLL_test (generator NLL of held-out real data; lower = better coverage)",
    "bleu": "BLEU vs. held-out references",
    "self_bleu": "Self-BLEU (lower = more diverse)",
    "loss": "held-out per-token NLL (eval_loss)",
}

PHASE_TITLES = {
    "mle": "after MLE pretraining",
    "discriminator_pretrain": "after discriminator pretraining",
    "adversarial": "after adversarial training",
}


def build_model_card(
    *,
    model_name: str,
    generator,
    discriminator,
    args,
    phase_metrics: dict[str, dict[str, float]],
    base_model: str | None = None,
    dataset: str | list[str] | None = None,
    dataset_description: str | None = None,
    num_train_sequences: int | None = None,
    trust_remote_code: bool = False,
    global_step: int | None = None,
    license: str | None = None,
    language: str | list[str] | None = None,
    tags: list[str] | None = None,
    repo_id: str | None = None,
    reward_name: str | None = None,
    adapter: dict | None = None,
) -> ModelCard:
    """A `huggingface_hub.ModelCard` for a SeqGAN-trained generator and its discriminator.

    `adapter`: for a peft generator, `{"type": "LORA", "base": <base model name or path>}`: the card then says the
    repo holds an adapter, names its base, and loads it with `AutoPeftModelForCausalLM`."""
    datasets = [dataset] if isinstance(dataset, str) else (list(dataset) if dataset else None)
    all_tags = list(dict.fromkeys(BASE_TAGS + list(tags or [])))
    final = _final_metrics(phase_metrics)
    eval_results = [
        EvalResult(task_type="text-generation", dataset_type=(datasets or ["custom"])[0],
                   dataset_name=(datasets or ["training data"])[0], metric_type=name, metric_name=name,
                   metric_value=value)
        for name, value in final.items()
    ] or None
    data = ModelCardData(
        model_name=model_name if eval_results else None,
        eval_results=eval_results,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=all_tags,
        base_model=base_model,
        datasets=datasets,
        license=license,
        language=language,
    )
    repo = repo_id or model_name
    g_class = type(generator).__name__
    if adapter:
        g_class = type(generator.get_base_model()).__name__
    remote = ", trust_remote_code=True" if trust_remote_code else ""

    if adapter:
        generator_line = (f"- **Generator**: a {adapter['type']} adapter (peft) on the base model "
                          f"`{adapter['base'] or 'unnamed'}` (`{g_class}`; {_count(generator, trainable=True)} "
                          "trainable parameters), at the repo root: adapter weights only; the base model is loaded "
                          "from its own repo.")
    else:
        generator_line = (f"- **Generator**: `{g_class}`" + (f", initialised from `{base_model}`" if base_model else
                          ", trained from scratch") + f" ({_count(generator)} parameters), at the repo root.")
    lines = [f"# {model_name}", ""]
    lines += [
        f"A `{g_class}` text generator trained with **SeqGAN** (Yu et al., AAAI 2017): maximum-likelihood "
        "pretraining, then policy-gradient (REINFORCE) training against a discriminator whose probability of "
        "\"real\" rewards each token through Monte Carlo rollouts. Trained with "
        "`seqgan_hf` on top of `transformers.Trainer` ([paper](https://arxiv.org/abs/1609.05473)).",
        "",
        generator_line,
        (f"- **Discriminator**: `{type(discriminator).__name__}` ({_count(discriminator)} parameters), in "
         "`discriminator/`." if discriminator is not None else "- **Discriminator**: none was trained."),
        *([f"- **Reward**: `{reward_name}`."] if reward_name and reward_name != "discriminator" else []),
        "- **Training data**: " + (dataset_description or (", ".join(datasets) if datasets else "user-provided"))
        + (f" ({num_train_sequences:,} sequences)" if num_train_sequences else "") + ".",
    ]
    if global_step is not None:
        lines.append(f"- **Training units completed**: {global_step} (MLE batches + D rounds + adversarial iterations).")
    lines += ["", "## How it was trained", ""]
    lines += _phase_lines(args)
    lines += ["", "## Evaluation", ""]
    lines += _metric_lines(phase_metrics)
    loader = "AutoPeftModelForCausalLM" if adapter else "AutoModelForCausalLM"
    lines += ["", "## Usage", "", "```python", *(["from peft import AutoPeftModelForCausalLM"] if adapter else []),
              "from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification", "",
              f'generator = {loader}.from_pretrained("{repo}"{remote})',
              f"samples = generator.generate(max_new_tokens={getattr(args, 'sequence_length', 20)})"
              "  # sampled from the start token"]
    if discriminator is not None:
        lines += [f'discriminator = AutoModelForSequenceClassification.from_pretrained("{repo}", '
                  f'subfolder="discriminator"{remote})']
    lines += ["```", ""]
    if trust_remote_code:
        lines += ["The model code (`auto_map` in `config.json`, the modeling file next to it) is pushed with the "
                  "weights, so `trust_remote_code=True` loads it without `seqgan_hf` installed; with `seqgan_hf` "
                  "installed, `import seqgan_hf` registers the classes and `trust_remote_code` is not needed.", ""]
    lines += ["## SeqGAN configuration", "", "| field | value |", "| --- | --- |"]
    for name in CONFIG_FIELDS:
        if hasattr(args, name):
            value = getattr(args, name)
            lines.append(f"| `{name}` | `{getattr(value, 'value', value)}` |")  # enums by their value
    lines += ["", "## Citation", "", "```bibtex", CITATION, "```", ""]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _count(module, trainable: bool = False) -> str:
    return f"{sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable):,}"


def _phase_lines(args) -> list[str]:
    world = getattr(args, "world_size", 1)
    per_device = args.per_device_train_batch_size
    lines = []
    if args.mle_epochs:
        lines.append(f"1. MLE pretraining: {args.mle_epochs} epochs, batch {per_device * world} "
                     f"({per_device} x {world} processes), learning rate {args.mle_learning_rate}.")
    if args.discriminator_pretrain_rounds:
        lines.append(f"2. Discriminator pretraining: {args.discriminator_pretrain_rounds} rounds of "
                     f"{args.discriminator_pretrain_epochs} epochs on fresh negatives and as many real sequences.")
    if args.adversarial_iterations:
        lines.append(f"3. Adversarial training: {args.adversarial_iterations} iterations of {args.g_steps} "
                     f"policy-gradient step(s) on {per_device * world} sampled sequences with {args.rollout_num} "
                     f"Monte Carlo rollouts per token ({args.rollout_policy} rollout policy, baseline "
                     f"{args.reward_baseline}), then {args.d_steps} discriminator step(s) of {args.d_epochs} epoch(s).")
    return lines or ["No training phase ran."]


def _clean_metrics(metrics: dict | None) -> dict[str, float]:
    clean = {k.removeprefix("eval_"): v for k, v in (metrics or {}).items()
             if isinstance(v, int | float) and not k.endswith(("_runtime", "per_second", "_phase"))}
    for key in ("phase", "epoch", "step"):
        clean.pop(key, None)
    return clean


def _final_metrics(phase_metrics: dict[str, dict[str, float]]) -> dict[str, float]:
    """The metrics of the last evaluated phase (what the pushed weights measure)."""
    for phase in ("adversarial", "discriminator_pretrain", "mle"):
        if phase in phase_metrics and _clean_metrics(phase_metrics[phase]):
            return _clean_metrics(phase_metrics[phase])
    return {}


def _metric_lines(phase_metrics: dict[str, dict[str, float]]) -> list[str]:
    rows = []
    names: list[str] = []
    for phase, metrics in phase_metrics.items():
        clean = _clean_metrics(metrics)
        if clean:
            rows.append((PHASE_TITLES.get(phase, phase), clean))
            names += [n for n in clean if n not in names]
    if not rows:
        return ["No evaluation was run (pass `evaluator=` or `eval_dataset=` to `SeqGANTrainer`)."]
    lines = ["| stage | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for title, metrics in rows:
        lines.append(f"| {title} | " + " | ".join(_fmt(metrics.get(n)) for n in names) + " |")
    described = [f"- `{n}`: {METRIC_NAMES[n]}" for n in names if n in METRIC_NAMES]
    return lines + ([""] + described if described else [])


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4f}"
    return str(value)
