"""`seqgan-hf`: train, sample and evaluate from the shell.

    seqgan-hf train [--config recipes/<name>.yaml] [--any_field value ...]
    seqgan-hf sample <model_dir> --num 100 --output samples.txt [--text]
    seqgan-hf evaluate <model_dir> [--oracle_seed 0 | --oracle_params oracle.npz]
    seqgan-hf evaluate <model_dir> --sweep [--temperatures 0.7,1.0,1.3] [--references test.txt]
                                   [--output sweep.json] [--plot sweep.png]

`train` reads a YAML recipe as defaults and lets flags override them; without `--config` the defaults are
the embedded recipe `QUICK_DEFAULTS` (the same values as `recipes/oracle_quick.yaml`), so `seqgan-hf` with
no arguments runs the demo.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field

import yaml
from transformers import HfArgumentParser

from .config import SeqGANConfig
from .models.cnn import PAPER_FILTER_SIZES, PAPER_NUM_FILTERS

logger = logging.getLogger("seqgan_hf")

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
    task: str = field(default="oracle", metadata={"help": "'oracle' (the paper's synthetic task) or 'text'."})
    generator: str = field(
        default="lstm", metadata={"help": "'lstm' (the paper's LSTM, built from config) or a causal LM path/Hub id."}
    )
    discriminator: str = field(
        default="cnn", metadata={"help": "'cnn' (the paper's CNN, built from config) or a classifier path/Hub id."}
    )
    tokenizer: str | None = field(default=None, metadata={"help": "Generator tokenizer (text task)."})
    discriminator_tokenizer: str | None = field(
        default=None, metadata={"help": "The discriminator's own tokenizer, if it differs from the generator's."}
    )
    train_file: str | None = field(
        default=None,
        metadata={
            "help": "Training data: a text file (one example per line), a JSONL with an 'input_ids' or 'text' "
            "field, or a save_to_disk directory. For the oracle task it replaces the sampled oracle data."
        },
    )
    # oracle task
    oracle_seed: int = field(default=0, metadata={"help": "Seed of the oracle's N(0,1) parameters and its data."})
    oracle_params: str | None = field(default=None, metadata={"help": "Oracle .npz in the paper's layout."})
    vocab_size: int = field(default=5000, metadata={"help": "Oracle vocabulary size."})
    num_train: int = field(default=10_000, metadata={"help": "Oracle training sequences."})
    num_test: int = field(default=10_000, metadata={"help": "Held-out oracle sequences for NLL_test."})
    eval_samples: int = field(default=10_000, metadata={"help": "Generator samples scored for NLL_oracle."})
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


def _parse_train_args(argv: list[str]) -> tuple[ScriptArguments, SeqGANConfig]:
    parser = HfArgumentParser((ScriptArguments, SeqGANConfig))
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        with open(known.config) as handle:
            defaults = yaml.safe_load(handle) or {}
    else:  # no recipe: the embedded default recipe, which flags may still override
        defaults = dict(QUICK_DEFAULTS)
    valid = {action.dest for action in parser._actions}
    unknown = sorted(set(defaults) - valid)
    if unknown:
        raise SystemExit(f"error: {known.config or 'defaults'}: unknown fields {unknown}; see `seqgan-hf train --help`.")
    parser.set_defaults(**defaults)
    script_args, config = parser.parse_args_into_dataclasses(args=argv)
    return script_args, config


def _build_models(script_args: ScriptArguments, vocab_size: int, config: SeqGANConfig, tokenizer=None):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from .models import CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMConfig, LSTMForCausalLM

    if script_args.generator == "lstm":
        generator = LSTMForCausalLM(
            LSTMConfig(
                vocab_size=vocab_size,
                embedding_dim=script_args.generator_embedding_dim,
                hidden_dim=script_args.generator_hidden_dim,
                sequence_length=config.sequence_length,
                # With a tokenizer its special tokens rule; the oracle task starts from token 0.
                bos_token_id=tokenizer.bos_token_id if tokenizer is not None else 0,
                eos_token_id=tokenizer.eos_token_id if tokenizer is not None else None,
                pad_token_id=tokenizer.pad_token_id if tokenizer is not None else None,
            )
        )
    else:
        generator = AutoModelForCausalLM.from_pretrained(script_args.generator)
    if script_args.discriminator == "cnn":
        discriminator = CNNForSequenceClassification(
            CNNDiscriminatorConfig(
                vocab_size=vocab_size,
                embedding_dim=script_args.discriminator_embedding_dim,
                filter_sizes=script_args.discriminator_filter_sizes,
                num_filters=script_args.discriminator_num_filters,
                num_labels=script_args.discriminator_num_labels,
                pad_token_id=tokenizer.pad_token_id if tokenizer is not None else 0,
            )
        )
    else:
        discriminator = AutoModelForSequenceClassification.from_pretrained(script_args.discriminator)
    return generator, discriminator


def train(argv: list[str]) -> dict:
    """`seqgan-hf train`: build data and models from the arguments, train, save, report."""
    script_args, config = _parse_train_args(argv)
    from transformers import AutoTokenizer, set_seed

    from .data import load_train_file
    from .oracle import OracleEvaluator, OracleTask
    from .trainer import SeqGANTrainer

    set_seed(config.seed)
    tokenizer = discriminator_tokenizer = evaluator = None
    if script_args.task == "oracle":
        task = OracleTask.create(
            seed=script_args.oracle_seed,
            num_train=script_args.num_train,
            num_test=script_args.num_test,
            oracle_params=script_args.oracle_params,
            sequence_length=config.sequence_length,
            vocab_size=script_args.vocab_size,
        )
        vocab_size = task.oracle.config.vocab_size
        train_dataset = load_train_file(script_args.train_file) if script_args.train_file else task.train_dataset()
        evaluator = OracleEvaluator(task, num_samples=script_args.eval_samples)
    elif script_args.task == "text":
        if script_args.train_file is None or script_args.tokenizer is None:
            raise SystemExit("error: --task text needs --train_file and --tokenizer.")
        tokenizer = AutoTokenizer.from_pretrained(script_args.tokenizer)
        vocab_size = len(tokenizer)
        train_dataset = load_train_file(script_args.train_file)
        if script_args.discriminator_tokenizer:
            discriminator_tokenizer = AutoTokenizer.from_pretrained(script_args.discriminator_tokenizer)
    else:
        raise SystemExit(f"error: --task {script_args.task!r}: choose 'oracle' or 'text'.")

    generator, discriminator = _build_models(script_args, vocab_size, config, tokenizer)
    trainer = SeqGANTrainer(
        model=generator,
        discriminator=discriminator,
        args=config,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        discriminator_processing_class=discriminator_tokenizer,
        evaluator=evaluator,
    )
    before = evaluator(trainer.model) if evaluator is not None else {}
    trainer.train()
    trainer.save_model()
    summary = {"untrained": before, **trainer.phase_metrics}
    if trainer.is_world_process_zero():
        with open(os.path.join(config.output_dir, "seqgan_results.json"), "w") as handle:
            json.dump(summary, handle, indent=2)
        _print_summary(summary, config.output_dir)
    return summary


def _print_summary(summary: dict, output_dir: str) -> None:
    labels = {"untrained": "untrained generator", "mle": "after MLE pretraining",
              "adversarial": "after adversarial training", "discriminator_pretrain": "after D pretraining"}
    rows = [(labels.get(stage, stage), metrics) for stage, metrics in summary.items() if metrics]
    if not rows:
        return
    print("\n| stage | NLL_oracle | NLL_test |\n| --- | --- | --- |")
    for label, metrics in rows:
        oracle = metrics.get("nll_oracle", metrics.get("eval_nll_oracle"))
        test = metrics.get("nll_test", metrics.get("eval_nll_test"))
        print(f"| {label} | {_fmt(oracle)} | {_fmt(test)} |")
    print(f"\nModels saved to {output_dir} (generator) and {output_dir}/discriminator.")


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else "-"


def sample(argv: list[str]) -> None:
    """`seqgan-hf sample`: write generated sequences, one per line (token ids, or text with --text)."""
    parser = argparse.ArgumentParser(prog="seqgan-hf sample", description=sample.__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--num", type=int, default=100, help="number of sequences")
    parser.add_argument("--output", default="-", help="output file ('-' for stdout)")
    parser.add_argument("--text", action="store_true", help="decode with the model's tokenizer")
    parser.add_argument("--max_new_tokens", type=int, default=None, help="default: the trained sequence length")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    set_seed(args.seed)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir) if args.text else None
    generation_config = model.generation_config
    bos = generation_config.bos_token_id if generation_config.bos_token_id is not None else model.config.bos_token_id
    if bos is None:
        raise SystemExit(f"error: {args.model_dir} defines no bos_token_id to start sampling from.")
    kwargs = {"do_sample": True}
    if args.max_new_tokens is not None:
        kwargs["max_new_tokens"] = args.max_new_tokens
    if args.temperature is not None:
        kwargs["temperature"] = args.temperature
    lines = []
    with torch.no_grad():
        for start in range(0, args.num, args.batch_size):
            count = min(args.batch_size, args.num - start)
            prompt = torch.full((count, 1), bos, dtype=torch.long)
            output = model.generate(prompt, attention_mask=torch.ones_like(prompt), **kwargs)[:, 1:]
            for row in output.tolist():
                if tokenizer is not None:
                    lines.append(tokenizer.decode(row, skip_special_tokens=True).replace("\n", " "))
                else:
                    lines.append(" ".join(map(str, row)))
    text = "\n".join(lines) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w") as handle:
            handle.write(text)


def evaluate(argv: list[str]) -> dict:
    """`seqgan-hf evaluate`: NLL_oracle and NLL_test of a trained generator on the oracle task, or with
    `--sweep` its quality-diversity curve over a temperature grid (NLL_oracle vs NLL_test on the oracle
    task; BLEU vs Self-BLEU against `--references` for text models), as JSON (`--output`) and PNG (`--plot`)."""
    parser = argparse.ArgumentParser(prog="seqgan-hf evaluate", description=evaluate.__doc__)
    parser.add_argument("model_dir")
    parser.add_argument("--oracle_seed", type=int, default=0)
    parser.add_argument("--oracle_params", default=None, help="oracle .npz (paper layout) or save_pretrained dir")
    parser.add_argument("--vocab_size", type=int, default=5000)
    parser.add_argument("--num_test", type=int, default=10_000, help="held-out oracle sequences for NLL_test")
    parser.add_argument("--num_samples", type=int, default=10_000, help="generator samples per measurement")
    parser.add_argument("--sequence_length", type=int, default=20)
    parser.add_argument("--sweep", action="store_true", help="measure every temperature of --temperatures")
    parser.add_argument("--temperatures", default=None,
                        help="comma-separated grid for --sweep (default: seqgan_hf.sweep.DEFAULT_TEMPERATURES)")
    parser.add_argument("--references", default=None,
                        help="text sweep: a held-out text file (one reference per line) for BLEU / Self-BLEU; "
                        "samples are decoded with the model's tokenizer. Without it: the oracle task.")
    parser.add_argument("--bleu", action="store_true",
                        help="oracle sweep: also BLEU of the samples vs the held-out oracle test set, and Self-BLEU")
    parser.add_argument("--max_order", type=int, default=4, help="BLEU n-gram order")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (the same at every temperature)")
    parser.add_argument("--output", default=None, help="write the result as JSON to this file")
    parser.add_argument("--plot", default=None, help="with --sweep: write the curve as a PNG to this file")
    args = parser.parse_args(argv)
    if args.plot and not args.sweep:
        parser.error("--plot needs --sweep")
    if args.references and not args.sweep:
        parser.error("--references needs --sweep")
    if args.bleu and (not args.sweep or args.references):
        parser.error("--bleu adds BLEU / Self-BLEU to an oracle --sweep (a text sweep with --references has them)")

    from transformers import AutoModelForCausalLM

    from .oracle import OracleEvaluator, OracleTask

    model = AutoModelForCausalLM.from_pretrained(args.model_dir).eval()
    task = None
    if args.references is None:
        task = OracleTask.create(
            seed=args.oracle_seed, num_train=1, num_test=args.num_test,  # the test set's seed ignores num_train
            oracle_params=args.oracle_params, sequence_length=args.sequence_length, vocab_size=args.vocab_size,
        )
    if not args.sweep:
        result = OracleEvaluator(task, num_samples=args.num_samples, seed=args.seed)(model)
    else:
        from .sweep import DEFAULT_TEMPERATURES, plot_sweeps, temperature_sweep

        temperatures = DEFAULT_TEMPERATURES
        if args.temperatures:
            try:
                temperatures = [float(value) for value in args.temperatures.split(",") if value.strip()]
            except ValueError:
                parser.error(f"--temperatures {args.temperatures!r}: expected comma-separated numbers")
        references = tokenizer = None
        if args.references is not None:
            from transformers import AutoTokenizer

            with open(args.references) as handle:
                references = [line.strip() for line in handle if line.strip()]
            tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        elif args.bleu:
            references = task.test.tolist()  # held-out oracle data, never the training set
        result = temperature_sweep(
            model, temperatures, task=task, references=references, tokenizer=tokenizer,
            num_samples=args.num_samples, sequence_length=args.sequence_length, max_order=args.max_order,
            seed=args.seed,
        )
        result["model"] = args.model_dir
        if args.plot:
            plot_sweeps({os.path.basename(os.path.normpath(args.model_dir)): result}, args.plot)
    text = json.dumps(result, indent=2)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text + "\n")
    print(text)
    return result


COMMANDS = {"train": train, "sample": sample, "evaluate": evaluate}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `seqgan-hf` console script (no arguments: train the embedded default)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv:
        COMMANDS["train"]([])
        return
    if argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    if argv[0] not in COMMANDS:
        raise SystemExit(f"error: unknown command {argv[0]!r}; use one of {sorted(COMMANDS)} (see --help).")
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
