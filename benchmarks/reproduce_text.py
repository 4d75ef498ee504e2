"""MLE vs SeqGAN on real corpora (the SeqGAN paper's Section 5 comparison, CPU-sized), with temperature sweeps.

Usage:
    seqgan-hf data shakespeare --output data/ && seqgan-hf data essen --output data/
    HF_HUB_OFFLINE=1 python benchmarks/reproduce_text.py --corpus shakespeare --seeds 0 1 2
    HF_HUB_OFFLINE=1 python benchmarks/reproduce_text.py --corpus essen --seeds 0 1 2
    HF_HUB_OFFLINE=1 python benchmarks/reproduce_text.py --corpus shakespeare --smoke --data-dir DIR  # < 1 min

Everything a run trains comes from the corpus's packaged recipe (`seqgan_hf/recipes/text_<corpus>.yaml`: the
tokenizer, sequence length, models, optimiser, discriminator schedule and adversarial iterations), so the
benchmark measures what `seqgan-hf train --config text_<corpus>.yaml` trains. For every seed it measures:

* `mle_early`: MLE pretraining for up to `max_mle_epochs` epochs, evaluated after every epoch on a validation
  split of the training file (`validation_percentage` %, fixed, never the test split); the epoch with the
  lowest validation NLL is kept (early stopping: the fair MLE reference, since MLE overfits);
* `mle_full`: the same run's last epoch (what MLE gives without early stopping);
* `mle`: `mle_early` trained on with MLE for as many updates as SeqGAN's g-steps (`adversarial_iterations *
  g_steps`), so `mle` and `seqgan` have had exactly the same number of generator updates;
* `seqgan`: from `mle_early`, discriminator pretraining, then adversarial training (the recipe's schedule).

Each final generator is scored on the corpus's test split (`test.txt`: held-out plays or tune collections):
BLEU-2..4 of `final_samples` fresh samples (each against the whole test set), Self-BLEU-4 of the same samples
(exact, every sample against all others), and the per-token NLL of the test lines. The paper's BLEU order per task
is `CORPORA[corpus]["paper_bleu"]`. For `--sweep-seeds` (default: the first seed), each method is also
sampled at every temperature of `sweep_temperatures`: BLEU-n vs Self-BLEU-n on one plot, and the BLEU gain of
SeqGAN over MLE *at equal Self-BLEU* (MLE's sweep interpolated at SeqGAN's Self-BLEU values).

`--corpus shakespeare_dialogue` (`seqgan-hf data shakespeare_dialogue`) runs the same protocol prompt-conditioned,
from `prompts_shakespeare.yaml`: the generators complete test prompts (a spoken line) and `PromptEvaluator` scores
each completion's BLEU against the reference reply to *its own* prompt, Self-BLEU across completions, and the NLL
of the reference replies given their prompts; sweeps are over the same prompts. Its "real" rows are the reference
replies' Self-BLEU and, as a context-free reference, the BLEU of real replies to other prompts (a fixed shuffle).
Files are named `prompts_shakespeare_dialogue.*`.

Writes `<output-dir>/text_<corpus>.json` (rewritten after every run: an interrupted run keeps what it measured),
`text_<corpus>_sweep.png` and `text_<corpus>_curve.png` (SeqGAN's test BLEU / NLL along the adversarial phase), and
prints the table. `--threads` (default 1): torch intra-op threads; two jobs on a 2-core machine each get one.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import datasets  # noqa: E402
import torch  # noqa: E402
from transformers import PrinterCallback, TrainerCallback, set_seed  # noqa: E402

from seqgan_hf import SeqGANTrainer  # noqa: E402
from seqgan_hf.baselines import mle_baseline_trainer  # noqa: E402
from seqgan_hf.cli import _build_models, _parse_train_args  # noqa: E402
from seqgan_hf.data import encode_dataset, load_train_file  # noqa: E402
from seqgan_hf.sampling import SamplingDistribution  # noqa: E402
from seqgan_hf.sweep import plot_sweeps, temperature_sweep  # noqa: E402
from seqgan_hf.text import TextEvaluator, build_tokenizer, held_out_split  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reproduce_oracle import EvaluateEvery, summarize  # noqa: E402  (shared with the oracle benchmark)

METHODS = ("mle_full", "mle_early", "mle", "seqgan")
METRICS = ("bleu2", "bleu3", "bleu4", "self_bleu", "nll")

# The paper's comparable task and BLEU order for each packaged corpus (Yu et al., 2017, Section 5).
CORPORA = {
    "shakespeare": dict(recipe="text_shakespeare.yaml", paper_bleu=3,
                        paper_task="Obama speeches (BLEU-3 and BLEU-4; spoken English)"),
    "essen": dict(recipe="text_essen.yaml", paper_bleu=4, paper_task="Nottingham folk music (BLEU-4; note tokens)"),
    # Prompt-conditioned: BLEU of each completion against the reference reply to the same prompt (PromptEvaluator).
    "shakespeare_dialogue": dict(recipe="prompts_shakespeare.yaml", paper_bleu=3, prompts=True,
                                 paper_task="none (the paper samples unconditionally); dialogue replies, BLEU-3"),
}

# What the benchmark adds to the recipe, per corpus (the recipe's mle_epochs becomes the early-stopping horizon's
# default: twice the recipe's).
PROTOCOL = dict(validation_percentage=5.0, final_samples=2000, eval_every=10, curve_samples=500,
                sweep_temperatures=[0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35], sweep_samples=1000)
SMOKE = dict(max_mle_epochs=2, final_samples=64, eval_every=1, curve_samples=32, sweep_temperatures=[0.8, 1.0, 1.25],
             sweep_samples=32)
SMOKE_RECIPE = ["--generator_embedding_dim", "8", "--generator_hidden_dim", "8", "--discriminator_embedding_dim", "8",
                "--discriminator_filter_sizes", "1", "2", "--discriminator_num_filters", "4", "4",
                "--discriminator_pretrain_rounds", "1", "--num_negatives", "32", "--adversarial_iterations", "2",
                "--rollout_num", "2", "--per_device_train_batch_size", "16", "--discriminator_batch_size", "16"]


class KeepBest(TrainerCallback):
    """Early stopping on held-out NLL: keep a copy of the generator's weights at its lowest `eval_nll`."""

    def __init__(self, steps_per_epoch: int):
        self.steps_per_epoch = steps_per_epoch
        self.best_nll, self.best_state, self.best_epoch, self.curve = math.inf, None, 0, []

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        epoch = state.global_step // self.steps_per_epoch
        if metrics is None or "eval_nll" not in metrics or (self.curve and self.curve[-1][0] == epoch):
            return control  # the phase-end evaluation repeats the last epoch's
        self.curve.append([epoch, metrics["eval_nll"]])
        print(f"  MLE epoch {epoch}: validation NLL {metrics['eval_nll']:.4f}", flush=True)
        if metrics["eval_nll"] < self.best_nll:
            self.best_nll, self.best_epoch = metrics["eval_nll"], epoch
            self.best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        return control


class Benchmark:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.corpus = CORPORA[args.corpus]
        self.p = dict(PROTOCOL)
        self.started = time.time()
        self.load_average = os.getloadavg() if hasattr(os, "getloadavg") else None
        folder = os.path.join(args.data_dir, args.corpus)
        self.prompts = self.corpus.get("prompts", False)
        extension = "jsonl" if self.prompts else "txt"
        self.train_file, self.test_file = (os.path.join(folder, f"{split}.{extension}") for split in ("train", "test"))
        for path in (self.train_file, self.test_file):
            if not os.path.isfile(path):
                raise SystemExit(f"{path} is missing: run `seqgan-hf data {args.corpus} --output {args.data_dir}`.")
        self.workdir = tempfile.mkdtemp(prefix="reproduce_text_")
        recipe = os.path.join(ROOT, "seqgan_hf", "recipes", self.corpus["recipe"])
        flags = ["--config", recipe, "--train_file", self.train_file, "--eval_file", self.test_file,
                 "--output_dir", self.workdir, "--report_to", "none", "--save_strategy", "no",
                 "--disable_tqdm", "true", "--logging_steps", str(10**9)]
        self.script_args, self.config = _parse_train_args(flags + (SMOKE_RECIPE if args.smoke else []))
        self.p["max_mle_epochs"] = args.max_mle_epochs or 2 * self.config.mle_epochs
        if args.smoke:
            self.p.update(SMOKE)
        self.runs: list[dict] = []
        self.sweeps: list[dict] = []
        self.pretrain_curves: dict[str, list] = {}

    # ---- data and models ----------------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """The fixed split: validation rows drawn from the training file with seed 0 (the same for every seed), a
        word-level tokenizer built from the remaining training rows, the test file as references."""
        config, script = self.config, self.script_args
        if self.prompts:
            return self.prepare_pairs()
        train = load_train_file(self.train_file)
        datasets.disable_progress_bars()
        self.train, validation = held_out_split(train, self.p["validation_percentage"], seed=0)
        self.tokenizer = build_tokenizer(self.train["text"], script.tokenizer_type, script.tokenizer_vocab_size,
                                         script.tokenizer_min_frequency)
        self.test_texts = [line for line in load_train_file(self.test_file)["text"] if line.strip()]
        encoding = dict(sequence_length=config.sequence_length, tokenizer=self.tokenizer,
                        eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
                        vocab_size=len(self.tokenizer), overflow=config.sequence_overflow,
                        fixed_length=not config.append_eos)
        self.num_train = len(encode_dataset(self.train, **encoding))  # warns once about overflow...
        logging.getLogger("seqgan_hf.data").setLevel(logging.ERROR)  # ...not again for every trainer
        self.steps_per_epoch = math.ceil(self.num_train / config.per_device_train_batch_size)
        distribution = SamplingDistribution(config.temperature, config.top_k, config.top_p)
        evaluator = dict(tokenizer=self.tokenizer, sequence_length=config.sequence_length,
                         overflow=config.sequence_overflow, distribution=distribution, append_eos=config.append_eos)
        # Early stopping sees the validation split only; curves and final numbers use the test split.
        self.validation_eval = TextEvaluator(validation["text"], num_samples=self.p["curve_samples"],
                                             self_bleu_samples=self.p["curve_samples"], **evaluator)
        self.curve_eval = TextEvaluator(self.test_texts, num_samples=self.p["curve_samples"],
                                        self_bleu_samples=self.p["curve_samples"], seed=1000, **evaluator)
        self.final_eval = TextEvaluator(self.test_texts, num_samples=self.p["final_samples"],
                                        self_bleu_samples=self.p["final_samples"], seed=2000, **evaluator)
        self.real_data = real_data_point(validation["text"], self.final_eval, self.p["final_samples"],
                                         self.corpus["paper_bleu"])
        self.facts = {"train_lines": len(self.train), "train_sequences_after_overflow": self.num_train,
                      "validation_lines": len(validation), "test_lines": len(self.test_texts),
                      "vocab_size": len(self.tokenizer), "steps_per_epoch": self.steps_per_epoch}
        self.log(f"data: {self.facts}")

    def prepare_pairs(self) -> None:
        """`prepare_data` for a prompt-completion corpus: the same split and tokenizer (built from prompts and
        completions), `PromptEvaluator`s (BLEU against the reference reply to the same prompt), and as the "real"
        row the Self-BLEU of held-out reference replies (their BLEU against themselves would be 1)."""
        from seqgan_hf.metrics import self_bleu
        from seqgan_hf.prompt_data import encode_prompt_dataset
        from seqgan_hf.prompt_eval import PromptEvaluator
        from seqgan_hf.text import tokenized_texts

        config, script = self.config, self.script_args
        datasets.disable_progress_bars()
        train = datasets.load_dataset("json", data_files=self.train_file, split="train")
        self.test_pairs = datasets.load_dataset("json", data_files=self.test_file, split="train")
        self.train, validation = held_out_split(train, self.p["validation_percentage"], seed=0)
        self.tokenizer = build_tokenizer(list(self.train["prompt"]) + list(self.train["completion"]),
                                         script.tokenizer_type, script.tokenizer_vocab_size,
                                         script.tokenizer_min_frequency)
        self.num_train = len(encode_prompt_dataset(
            self.train, config.sequence_length, self.tokenizer, self.tokenizer.eos_token_id,
            self.tokenizer.pad_token_id, vocab_size=len(self.tokenizer), max_prompt_length=config.max_prompt_length,
            prompt_overflow=config.prompt_overflow, overflow=config.sequence_overflow))
        logging.getLogger("seqgan_hf.data").setLevel(logging.ERROR)
        logging.getLogger("seqgan_hf.prompt_data").setLevel(logging.ERROR)
        self.steps_per_epoch = math.ceil(self.num_train / config.per_device_train_batch_size)
        evaluator = dict(tokenizer=self.tokenizer, sequence_length=config.sequence_length,
                         max_prompt_length=config.max_prompt_length, prompt_overflow=config.prompt_overflow,
                         overflow=config.sequence_overflow, append_eos=config.append_eos,
                         distribution=SamplingDistribution(config.temperature, config.top_k, config.top_p))
        self.evaluator_settings = evaluator
        self.validation_eval = PromptEvaluator(validation, num_samples=self.p["curve_samples"],
                                               self_bleu_samples=self.p["curve_samples"], **evaluator)
        self.curve_eval = PromptEvaluator(self.test_pairs, num_samples=self.p["curve_samples"],
                                          self_bleu_samples=self.p["curve_samples"], seed=1000, **evaluator)
        self.final_eval = PromptEvaluator(self.test_pairs, num_samples=self.p["final_samples"],
                                          self_bleu_samples=self.p["final_samples"], seed=2000, **evaluator)
        replies = tokenized_texts(list(self.test_pairs["completion"])[: self.p["final_samples"]], self.tokenizer)
        order = self.corpus["paper_bleu"]
        self.real_data = {"lines": len(replies), "self_bleu": self_bleu(replies, 4),
                          f"self_bleu{order}": self_bleu(replies, order)}
        # A fluent reply that ignores its context: each test prompt answered with the real reply to another test
        # prompt (a fixed shuffle), scored like the samples. BLEU near this means the model does not use the prompt.
        rows = self.final_eval.sampled_rows
        shuffled = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
        mismatched = [tokenized_texts([self.test_pairs[rows[index]]["completion"]], self.tokenizer)[0]
                      for index in shuffled]
        self.real_data["mismatched_replies"] = {f"bleu{n}": self.final_eval.bleu(mismatched, n) for n in (2, 3, 4)}
        self.facts = {"train_pairs": len(self.train), "train_pairs_after_overflow": self.num_train,
                      "validation_pairs": len(validation), "test_pairs": len(self.test_pairs),
                      "vocab_size": len(self.tokenizer), "steps_per_epoch": self.steps_per_epoch}
        self.log(f"data: {self.facts}")

    def prompt_sweep(self, model, seed: int) -> dict:
        """`temperature_sweep` for completions of the test prompts: BLEU-n against each prompt's reference reply and
        Self-BLEU-n of the completions, at every temperature."""
        from seqgan_hf.metrics import self_bleu
        from seqgan_hf.prompt_eval import PromptEvaluator

        order, points = self.corpus["paper_bleu"], []
        settings = dict(self.evaluator_settings)
        for temperature in self.p["sweep_temperatures"]:
            settings["distribution"] = SamplingDistribution(temperature, self.config.top_k, self.config.top_p)
            evaluator = PromptEvaluator(self.test_pairs, num_samples=self.p["sweep_samples"], max_order=order,
                                        seed=3000 + seed, **settings)
            texts = evaluator.completions_of(model, evaluator.sampled_rows)
            points.append({"temperature": temperature, "bleu": evaluator.bleu(texts, order),
                           "self_bleu": self_bleu(texts, order)})
        return {"temperatures": self.p["sweep_temperatures"], "points": points,
                "num_samples": self.p["sweep_samples"], "sampling_seed": 3000 + seed}

    def models(self, seed: int):
        set_seed(seed)
        return _build_models(self.script_args, len(self.tokenizer), self.config, self.tokenizer)

    def trainer_config(self, seed: int, name: str, **fields):
        values = dict(output_dir=os.path.join(self.workdir, f"{name}-seed{seed}"), seed=seed,
                      mle_epochs=0, discriminator_pretrain_rounds=0, adversarial_iterations=0)
        values.update(fields)
        return dataclasses.replace(self.config, **values)

    @staticmethod
    def quiet(trainer):
        trainer.remove_callback(PrinterCallback)
        return trainer

    # ---- one seed -------------------------------------------------------------------------------------------

    def run_seed(self, seed: int) -> None:
        p, config = self.p, self.config
        clock = time.time()
        generator, discriminator = self.models(seed)
        keep_best = KeepBest(self.steps_per_epoch)
        trainer = self.quiet(SeqGANTrainer(
            model=generator, args=self.trainer_config(seed, "mle_pretrain", mle_epochs=p["max_mle_epochs"]),
            train_dataset=self.train, processing_class=self.tokenizer, evaluator=self.validation_eval,
            callbacks=[EvaluateEvery(self.steps_per_epoch), keep_best]))
        trainer.train()
        pretrain_time = time.time() - clock
        full = copy.deepcopy(trainer.model).cpu()
        early = copy.deepcopy(full)
        early.load_state_dict(keep_best.best_state)
        early_updates = keep_best.best_epoch * self.steps_per_epoch
        self.pretrain_curves[str(seed)] = keep_best.curve
        self.log(f"seed {seed}: MLE {p['max_mle_epochs']} epochs in {pretrain_time:.0f} s; validation NLL by epoch "
                 f"{[round(v, 3) for _, v in keep_best.curve]}; early stop at epoch {keep_best.best_epoch}")
        extra = {"pretrain_time_s": round(pretrain_time, 1), "best_epoch": keep_best.best_epoch}
        self.record("mle_full", seed, full, clock, trainer.state.global_step, extra=extra)
        self.record("mle_early", seed, early, clock, early_updates, extra=extra)

        g_updates = config.adversarial_iterations * config.g_steps
        clock = time.time()
        trainer = self.quiet(mle_baseline_trainer(
            copy.deepcopy(early), self.trainer_config(seed, "mle"), self.train, num_updates=g_updates,
            processing_class=self.tokenizer))
        trainer.train()
        self.record("mle", seed, trainer.model, clock, early_updates + trainer.state.global_step)

        clock = time.time()
        rounds = config.discriminator_pretrain_rounds
        args = self.trainer_config(seed, "seqgan", discriminator_pretrain_rounds=rounds,
                                   adversarial_iterations=config.adversarial_iterations)
        trainer = self.quiet(SeqGANTrainer(
            model=copy.deepcopy(early), discriminator=discriminator, args=args, train_dataset=self.train,
            processing_class=self.tokenizer, evaluator=self.curve_eval,
            callbacks=[EvaluateEvery(p["eval_every"] * config.g_steps, rounds)]))
        start = self.curve_eval(early)
        trainer.train()
        points = {0: {k: start[k] for k in METRICS}}  # iteration -> test metrics (a repeat overwrites itself)
        for entry in trainer.state.log_history:
            if "eval_bleu2" in entry and entry["step"] > rounds:
                points[(entry["step"] - rounds) // config.g_steps] = {k: entry[f"eval_{k}"] for k in METRICS}
        curve = [[iteration, values] for iteration, values in sorted(points.items())]
        d_logs = [e for e in trainer.state.log_history if "discriminator/accuracy_fake" in e]
        extra = {"curve": curve}
        if d_logs:
            extra["discriminator_last_log"] = {k: round(v, 4) for k, v in d_logs[-1].items()
                                               if k.startswith(("discriminator/", "adversarial/"))}
        self.record("seqgan", seed, trainer.model, clock, early_updates + g_updates, extra=extra)
        if seed in self.sweep_seeds:
            self.run_sweeps(seed)

    def run_sweeps(self, seed: int) -> None:
        clock = time.time()
        order = self.corpus["paper_bleu"]
        for method in METHODS:
            if self.prompts:
                self.sweeps = [s for s in self.sweeps if (s["method"], s["seed"]) != (method, seed)]
                self.sweeps.append({"method": method, "seed": seed,
                                    **self.prompt_sweep(self.final_models[(method, seed)], seed)})
                continue
            sweep = temperature_sweep(
                self.final_models[(method, seed)], self.p["sweep_temperatures"], references=self.test_texts,
                tokenizer=self.tokenizer, num_samples=self.p["sweep_samples"],
                sequence_length=self.config.sequence_length, max_order=order, seed=3000 + seed,
                top_k=self.config.top_k, top_p=self.config.top_p)
            sweep["sampling_seed"] = sweep.pop("seed")
            self.sweeps = [s for s in self.sweeps if (s["method"], s["seed"]) != (method, seed)]
            self.sweeps.append({"method": method, "seed": seed, **sweep})
        self.log(f"seed {seed}: temperature sweeps in {time.time() - clock:.0f} s")
        self.write()

    def record(self, method: str, seed: int, model, clock: float, updates: int, extra: dict | None = None) -> None:
        metrics = self.final_eval(model)
        run = {"method": method, "seed": seed, **{k: metrics[k] for k in METRICS}, "perplexity": metrics["perplexity"],
               "generator_updates": updates, "wall_time_s": round(time.time() - clock, 1), **(extra or {})}
        self.runs = [r for r in self.runs if (r["method"], r["seed"]) != (method, seed)] + [run]
        self.final_models[(method, seed)] = copy.deepcopy(model).cpu().eval()
        if self.args.save_models:
            model.save_pretrained(os.path.join(self.args.save_models, f"{method}-seed{seed}"))
            self.tokenizer.save_pretrained(os.path.join(self.args.save_models, f"{method}-seed{seed}"))
        self.log(f"seed {seed}: {method:9s} " + "  ".join(f"{k} {metrics[k]:.3f}" for k in METRICS)
                 + f"  ({updates} updates, {run['wall_time_s']:.0f} s)")
        self.write()

    # ---- whole benchmark --------------------------------------------------------------------------------------

    def run(self) -> dict:
        torch.set_num_threads(self.args.threads)
        os.makedirs(self.args.output_dir, exist_ok=True)
        self.json_path = os.path.join(self.args.output_dir, f"{self.args.stem}.json")
        if self.args.real_data_only:  # add the real-text row to an existing result
            with open(self.json_path) as handle:
                result = json.load(handle)
            self.prepare_data()
            result["real_data"] = self.real_data
            with open(self.json_path, "w") as handle:
                json.dump(result, handle, indent=1)
            return result
        self.final_models = {}
        self.sweep_seeds = set(self.args.sweep_seeds if self.args.sweep_seeds is not None else self.args.seeds[:1])
        try:
            self.prepare_data()
            for seed in self.args.seeds:
                self.run_seed(seed)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)  # the trainers' output_dirs: nothing kept there
        result = self.write(final=True)
        self.print_table()
        return result

    def summary(self) -> dict:
        return summarize(self.runs, METHODS, (*METRICS, "generator_updates"))

    def result(self) -> dict:
        config = self.config
        recipe = {name: getattr(config, name) for name in (
            "sequence_length", "sequence_overflow", "per_device_train_batch_size", "mle_learning_rate",
            "learning_rate", "discriminator_learning_rate", "max_grad_norm", "mle_epochs",
            "discriminator_pretrain_rounds", "discriminator_pretrain_epochs", "num_negatives",
            "adversarial_iterations", "g_steps", "d_steps", "d_epochs", "rollout_num", "reward_baseline",
            "temperature", "top_k", "top_p")}
        script = self.script_args
        recipe.update({name: getattr(script, name) for name in (
            "tokenizer_type", "tokenizer_vocab_size", "tokenizer_min_frequency", "generator_embedding_dim",
            "generator_hidden_dim", "discriminator_embedding_dim", "discriminator_filter_sizes",
            "discriminator_num_filters")})
        command = "python benchmarks/reproduce_text.py " + " ".join(sys.argv[1:])
        return {
            "corpus": self.args.corpus + ("-smoke" if self.args.smoke else ""),
            "paper_task": self.corpus["paper_task"],
            "paper_bleu_order": self.corpus["paper_bleu"],
            "recipe": self.corpus["recipe"],
            "recipe_settings": recipe,
            "protocol": self.p,
            "data": getattr(self, "facts", {}),
            "command": command,
            "machine": {"platform": platform.platform(), "processor": platform.processor(),
                        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "torch": torch.__version__, "load_average_at_start": self.load_average, "device": "cpu"},
            "wall_time_s": round(time.time() - self.started, 1),
            "process_cpu_time_s": round(time.process_time(), 1),
            "summary": self.summary(),
            "runs": sorted(self.runs, key=lambda r: (r["seed"], METHODS.index(r["method"]))),
            "sweeps": self.sweeps,
            "seqgan_vs_mle_at_equal_self_bleu": equal_self_bleu_gains(self.sweeps),
            "mle_validation_nll_by_epoch": self.pretrain_curves,
            "real_data": getattr(self, "real_data", None),
        }

    def write(self, final: bool = False) -> dict:
        result = json.loads(json.dumps(self.result()))  # as the file holds it (e.g. string keys)
        temporary = self.json_path + ".tmp"
        with open(temporary, "w") as handle:
            json.dump(result, handle, indent=1)
        os.replace(temporary, self.json_path)
        if final:
            draw(result, self.args.output_dir, self.args.stem)
        return result

    def print_table(self) -> None:
        summary, order = self.summary(), self.corpus["paper_bleu"]
        print(f"\n{self.args.corpus}: mean ± std over seeds {self.args.seeds} (test split; paper's BLEU-{order})")
        print("| method | updates | BLEU-2 | BLEU-3 | BLEU-4 | Self-BLEU-4 | test NLL |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for method, row in summary.items():
            cells = [f"{row[f'{k}_mean']:.3f} ± {row[f'{k}_std']:.3f}" for k in METRICS]
            print(f"| {method} | {row['generator_updates_mean']:.0f} | " + " | ".join(cells) + " |")
        real = self.real_data
        if self.prompts:
            other = real["mismatched_replies"]
            print(f"| real replies ({real['lines']} test pairs) | - | - | - | - | {real['self_bleu']:.3f} | - |")
            print("| real replies to other prompts | - | " + " | ".join(f"{other[f'bleu{n}']:.3f}" for n in (2, 3, 4))
                  + " | - | - |")
        else:
            print(f"| real text ({real['lines']} validation lines) | - | " + " | ".join(
                f"{real[k]:.3f}" for k in METRICS if k != "nll") + " | - |")
        for gain in equal_self_bleu_gains(self.sweeps):
            print(f"seed {gain['seed']}: SeqGAN BLEU-{order} minus MLE's at equal Self-BLEU-{order} "
                  f"(vs {gain['reference']}): {gain['gains']}")
        print(f"\nwall time {time.time() - self.started:.0f} s; results in {self.json_path}")

    def log(self, message: str) -> None:
        print(f"[{time.time() - self.started:7.0f} s] {message}", flush=True)


def real_data_point(lines, evaluator: TextEvaluator, count: int, sweep_order: int) -> dict:
    """What real text scores on the sample metrics: up to `count` held-out validation lines (never trained on) as if
    they were samples (those that fit in a sample: T - 1 tokens before EOS, or T without, through the tokenizer like samples), against the test
    references: the BLEU and the diversity (Self-BLEU) a generator would reach if it were the data distribution."""
    from seqgan_hf.metrics import corpus_bleu, self_bleu
    from seqgan_hf.text import tokenized_texts

    room = evaluator.sequence_length - (evaluator.eos_token_id is not None)  # as samples: T - 1 tokens before EOS
    fitting = [line for line in lines if 0 < len(evaluator.tokenizer(line, add_special_tokens=False)["input_ids"]) <= room]
    texts = tokenized_texts(fitting[:count], evaluator.tokenizer)
    point = {f"bleu{n}": corpus_bleu(texts, table, n) for n, table in evaluator.references.items()}
    point["self_bleu"] = self_bleu(texts, evaluator.max_order)
    point[f"self_bleu{sweep_order}"] = self_bleu(texts, sweep_order)  # the sweep plot's axes
    return {"lines": len(texts), **point}


def equal_self_bleu_gains(sweeps: list[dict]) -> list[dict]:
    """For each swept seed: at every SeqGAN sweep point whose Self-BLEU lies inside an MLE sweep's Self-BLEU range,
    SeqGAN's BLEU minus the MLE sweep's BLEU interpolated (linearly, between neighbouring temperatures) at that
    Self-BLEU. Positive: SeqGAN is above MLE's quality-diversity curve there."""
    gains = []
    for seqgan in (s for s in sweeps if s["method"] == "seqgan"):
        for reference in ("mle_early", "mle"):
            mle = next((s for s in sweeps if s["method"] == reference and s["seed"] == seqgan["seed"]), None)
            if mle is None:
                continue
            curve = sorted((p["self_bleu"], p["bleu"]) for p in mle["points"])
            points = {}
            for point in seqgan["points"]:
                x = point["self_bleu"]
                for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
                    if x0 <= x <= x1 and x1 > x0:
                        points[f"{point['temperature']:g}"] = round(point["bleu"] - (y0 + (y1 - y0) * (x - x0) / (x1 - x0)), 4)
                        break
            gains.append({"seed": seqgan["seed"], "reference": reference, "gains": points})
    return gains


def draw(result: dict, output_dir: str, stem: str) -> None:
    if result["sweeps"]:
        seed = min(s["seed"] for s in result["sweeps"])
        labels = {"mle_full": "MLE, no early stopping", "mle_early": "MLE, early-stopped",
                  "mle": "MLE, same updates as SeqGAN", "seqgan": "SeqGAN"}
        sweeps = {labels[s["method"]]: s for s in result["sweeps"] if s["seed"] == seed}
        plot_sweeps(sweeps, os.path.join(output_dir, f"{stem}_sweep.png"),
                    title=f"{result['corpus']}: temperature sweep, BLEU-{result['paper_bleu_order']} vs "
                          f"Self-BLEU-{result['paper_bleu_order']}\n(seed {seed}; test split"
                          + ("; BLEU against the reply to the same prompt)" if "real_data" in result and
                             "mismatched_replies" in (result["real_data"] or {}) else ")"))
    curves = [(r["seed"], r["curve"]) for r in result["runs"] if r["method"] == "seqgan" and r.get("curve")]
    if curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        order = result["paper_bleu_order"]
        figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
        for axis, key, label in zip(axes, (f"bleu{order}", "self_bleu", "nll"),
                                    (f"BLEU-{order} (higher: closer to the test set)",
                                     "Self-BLEU-4 (lower: more diverse)", "test NLL (lower: better coverage)")):
            for seed, curve in curves:
                axis.plot([point[0] for point in curve], [point[1][key] for point in curve], marker=".",
                          label=f"seed {seed}")
            axis.set_xlabel("adversarial iteration (0 = early-stopped MLE)")
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        figure.suptitle(f"{result['corpus']}: SeqGAN along the adversarial phase "
                        f"({result['protocol']['curve_samples']} samples per point)", fontsize=10)
        figure.tight_layout()
        figure.savefig(os.path.join(output_dir, f"{stem}_curve.png"), dpi=110)
        plt.close(figure)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CORPORA), required=True)
    parser.add_argument("--data-dir", default=os.path.join(ROOT, "data"),
                        help="where `seqgan-hf data <corpus> --output DIR` wrote <corpus>/ (default: data)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0 1 2 (smoke: 0)")
    parser.add_argument("--sweep-seeds", type=int, nargs="*", default=None, help="default: the first seed")
    parser.add_argument("--max-mle-epochs", type=int, default=None,
                        help="early-stopping horizon (default: twice the recipe's mle_epochs)")
    parser.add_argument("--smoke", action="store_true", help="tiny models, every code path: about a minute")
    parser.add_argument("--output-dir", default=None, help="default: docs/results (smoke: outputs/reproduce_smoke)")
    parser.add_argument("--stem", default=None, help="file name stem (default: text_<corpus>)")
    parser.add_argument("--save-models", default=None, metavar="DIR",
                        help="save every final generator and the tokenizer to DIR/<method>-seed<seed>")
    parser.add_argument("--real-data-only", action="store_true",
                        help="only add the real-text row (validation lines scored like samples) to an existing JSON")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args(argv)
    if args.max_mle_epochs is not None and args.max_mle_epochs < 1:
        parser.error(f"--max-mle-epochs {args.max_mle_epochs}: early stopping needs at least 1 epoch")
    if args.seeds is None:
        args.seeds = [0] if args.smoke else [0, 1, 2]
    if args.output_dir is None:
        args.output_dir = os.path.join(ROOT, "outputs", "reproduce_smoke") if args.smoke else os.path.join(
            ROOT, "docs", "results")
    if args.stem is None:
        args.stem = f"{'prompts' if CORPORA[args.corpus].get('prompts') else 'text'}_{args.corpus}"
    return args


def main(argv=None) -> dict:
    return Benchmark(parse_args(argv)).run()


if __name__ == "__main__":
    main()
