"""`seqgan-hf` on prompt-completion pairs (`--task prompts`): train from a .jsonl of pairs, complete prompts with
`sample --prompt / --prompts_file`, score with `evaluate --references pairs.jsonl`, and refuse, in one
`error: ... (<argument>): <fix>` line before any work, pairs given to another task, other data given to the
prompts task, bad rows (by line), and prompts where they do not apply or are missing.

Everything runs in-process through `seqgan_hf.cli.main`; one tiny model is trained per module.
"""

from __future__ import annotations

import json
import shutil

import pytest
import transformers

from seqgan_hf import cli
from seqgan_hf.cli import main
from seqgan_hf.cli_checks import SETTINGS_NAME
from seqgan_hf.oracle import OracleTask
from seqgan_hf.trainer import SeqGANTrainer
from tests.builders import CORPUS
from tests.test_cli_errors import assert_one_error, run_main

TINY = [
    "--sequence_length", "6", "--mle_epochs", "1",
    "--discriminator_pretrain_rounds", "1", "--num_negatives", "16", "--adversarial_iterations", "1",
    "--rollout_num", "2", "--eval_samples", "8",
    "--discriminator_filter_sizes", "1", "2", "--discriminator_num_filters", "4", "4",
    "--discriminator_embedding_dim", "8", "--generator_embedding_dim", "8", "--generator_hidden_dim", "8",
    "--per_device_train_batch_size", "16", "--discriminator_batch_size", "16", "--disable_tqdm", "true",
]
# Each CORPUS line split after its third word: the prompt, then the completion.
PAIRS = [{"prompt": " ".join(line.split()[:3]), "completion": " ".join(line.split()[3:])} for line in CORPUS[:8]]


def jsonl(rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def _fail(*args, **kwargs):
    raise AssertionError("work started before the bad input was refused")


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    """A tiny model trained on pairs (`run`), an oracle-task stand-in (`other_model`) and the files cases use."""
    root = tmp_path_factory.mktemp("cli_prompts")
    files = {
        "pairs": jsonl(PAIRS * 4), "held_out": jsonl(PAIRS),
        "lines": "".join(line + "\n" for line in CORPUS[:8]),
        "prompts": "the cat sat\n\na dog ran in the big green park today\n",
        "missing_completion": jsonl(PAIRS[:2] + [{"prompt": "the cat"}] + PAIRS[2:]),
        "mixed_formats": jsonl(PAIRS[:1] + [{"prompt": [5, 6], "completion": [7]}]),
        "number_prompt": jsonl(PAIRS[:3] + [{"prompt": 3, "completion": "the mat"}]),
        "id_pairs": jsonl([{"prompt": [4, 5], "completion": [6, 7]}] * 8),
    }
    names = {name: f"{name}.txt" if name in ("lines", "prompts") else f"{name}.jsonl" for name in files}
    for name, text in files.items():
        (root / names[name]).write_text(text)
    run = root / "run"
    main(["train", "--task", "prompts", "--train_file", str(root / names["pairs"]),
          "--eval_file", str(root / names["held_out"]),
          *TINY, "--max_prompt_length", "4", "--mle_epochs", "30", "--output_dir", str(run)])
    other_model = root / "other_model"  # the same model, claimed by its settings to be an oracle-task model
    shutil.copytree(run, other_model)
    settings = json.loads((other_model / SETTINGS_NAME).read_text())
    (other_model / SETTINGS_NAME).write_text(json.dumps({**settings, "task": "oracle"}))
    return {"root": str(root), "run": str(run), "other_model": str(other_model),
            **{name: str(root / names[name]) for name in files}}


def test_train_on_pairs_evaluates_completions_and_saves_the_prompt_settings(paths):
    results = json.loads(open(f"{paths['run']}/seqgan_results.json").read())
    assert {"bleu2", "bleu4", "self_bleu", "nll", "perplexity"} <= set(results["untrained"]), results
    for stage in ("mle", "adversarial"):
        assert {"eval_bleu2", "eval_bleu4", "eval_self_bleu", "eval_nll", "eval_perplexity"} <= set(results[stage])
    assert results["mle"]["eval_nll"] < results["untrained"]["nll"] - 1  # it learned the completions
    settings = json.loads(open(f"{paths['run']}/{SETTINGS_NAME}").read())
    assert settings["task"] == "prompts" and settings["prompt_width"] == 4 and settings["tokenizer_built"] == "word"
    assert settings["bos_token_id"] is not None and settings["eval_samples"] == 8


def test_without_eval_file_a_share_of_the_pairs_is_held_out(paths, tmp_path):
    """Like --task text: --validation_split_percentage of the pairs are held out, for the phase-end and the
    periodic (--eval_strategy steps) evaluations alike."""
    run = tmp_path / "run"
    main(["train", "--task", "prompts", "--train_file", paths["pairs"], *TINY, "--adversarial_iterations", "0",
          "--validation_split_percentage", "25", "--eval_strategy", "steps", "--eval_steps", "1",
          "--output_dir", str(run)])
    settings = json.loads((run / SETTINGS_NAME).read_text())
    assert settings["prompt_width"] == 3  # no --max_prompt_length: the longest training prompt
    results = json.loads((run / "seqgan_results.json").read_text())
    assert "eval_bleu2" in results["mle"] and "nll" in results["untrained"]


def test_sample_completes_every_prompt_num_times_in_order(paths, tmp_path, capsys):
    output = tmp_path / "completions.txt"
    argv = ["sample", paths["run"], "--prompt", "the bird sang", "--prompts_file", paths["prompts"], "--num", "3",
            "--text", "--output", str(output)]
    main(argv)
    lines = output.read_text().splitlines()
    assert len(lines) == 3 * 3  # three prompts (the blank line is skipped), three completions each
    vocabulary = {word for line in CORPUS for word in line.split()}
    assert all(set(line.split()) <= vocabulary for line in lines), lines
    assert all(len(line.split()) <= 6 for line in lines)
    # The 10-word prompt is cut to the 4 prompt tokens the model was trained with, with a warning.
    assert "keep their last 4 tokens" in capsys.readouterr().err
    first = output.read_text()
    main(argv)
    assert output.read_text() == first  # --seed (default 0) fixes the draws

    main(["sample", paths["run"], "--prompt", "the cat", "--output", str(output)])
    (line,) = output.read_text().splitlines()  # default: one completion per prompt, as token ids
    assert all(token.isdigit() for token in line.split())


def test_evaluate_scores_completions_against_held_out_pairs(paths, tmp_path, capsys):
    output = tmp_path / "scores.json"
    main(["evaluate", paths["run"], "--references", paths["held_out"], "--output", str(output)])
    result = json.loads(output.read_text())
    assert result["num_prompts"] == 8 and 0 <= result["bleu2"] <= 1 and result["nll"] > 0
    # The held-out NLL is the one training reported at its end (the same pairs, the same encoding).
    final = json.loads(open(f"{paths['run']}/seqgan_results.json").read())["adversarial"]["eval_nll"]
    assert result["nll"] == pytest.approx(final, rel=1e-6)


def test_a_pretrained_generator_and_tokenizer_complete_left_padded_prompts(paths, tmp_path):
    """A Llama-style generator with its own tokenizer (`--generator`, `--tokenizer`) in place of the built-in LSTM:
    prompts of different lengths are left-padded, and completions continue them."""
    from tests.builders import lm_token_ids, tiny_llama, train_tokenizer

    tokenizer = train_tokenizer()
    tiny_llama(**lm_token_ids(tokenizer)).save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    run = tmp_path / "run"
    main(["train", "--task", "prompts", "--train_file", paths["pairs"], "--eval_file", paths["held_out"], *TINY,
          "--generator", str(tmp_path / "lm"), "--tokenizer", str(tmp_path / "lm"), "--output_dir", str(run)])
    results = json.loads((run / "seqgan_results.json").read_text())
    assert results["adversarial"]["eval_nll"] > 0
    output = tmp_path / "completions.txt"
    main(["sample", str(run), "--prompt", "the", "--prompt", "a small dog sat", "--num", "2", "--text",
          "--output", str(output)])
    assert len(output.read_text().splitlines()) == 4


def test_chat_pairs_train_and_sampled_prompts_go_through_the_chat_template(paths, tmp_path, monkeypatch, capsys):
    """Conversational pairs need a tokenizer with a chat template (`--tokenizer`); `sample` then renders each
    prompt as one user message, as training rendered the prompts."""
    from tests.builders import train_tokenizer

    tokenizer = train_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    tokenizer.save_pretrained(tmp_path / "tok")
    chats = tmp_path / "chats.jsonl"
    chats.write_text(jsonl({"prompt": [{"role": "user", "content": pair["prompt"]}],
                            "completion": [{"role": "assistant", "content": pair["completion"]}]} for pair in PAIRS))
    run = tmp_path / "run"
    main(["train", "--task", "prompts", "--train_file", str(chats), "--eval_file", str(chats), *TINY,
          "--tokenizer", str(tmp_path / "tok"), "--output_dir", str(run)])
    assert json.loads((run / SETTINGS_NAME).read_text())["prompt_format"] == "messages"
    rendered = []
    render = transformers.PreTrainedTokenizerFast.apply_chat_template
    monkeypatch.setattr(transformers.PreTrainedTokenizerFast, "apply_chat_template",
                        lambda self, messages, **kwargs: rendered.append(messages) or render(self, messages, **kwargs))
    main(["sample", str(run), "--prompt", "the cat sat", "--output", str(tmp_path / "out.txt")])
    assert rendered == [[{"role": "user", "content": "the cat sat"}]]

    # Without --tokenizer, none has a chat template to read the messages with.
    code, _, err = run_main(["train", "--task", "prompts", "--train_file", str(chats), *TINY,
                             "--output_dir", str(tmp_path / "no_tokenizer")], capsys)
    assert_one_error(code, err, ("--tokenizer", "chat messages"))


def test_the_recipe_parses_and_its_filters_fit_the_pairs(tmp_path):
    from seqgan_hf.cli import _parse_train_args

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(jsonl(PAIRS))
    script_args, config = _parse_train_args(["--config", "prompts_shakespeare", "--train_file", str(pairs),
                                             "--eval_file", str(pairs), "--output_dir", str(tmp_path / "out")])
    assert script_args.task == "prompts" and (config.max_prompt_length, config.prompt_overflow) == (16, "drop")
    assert config.sequence_length == 16 and config.sequence_overflow == "drop" and config.append_eos
    assert max(script_args.discriminator_filter_sizes) <= config.max_prompt_length + config.sequence_length


T = ["train", *TINY, "--output_dir", "{out}"]
P = T + ["--task", "prompts", "--train_file"]
CASES = {
    # train: the data's kind must be the task's, every row whole and in one format (named by line)
    "text_task_given_pairs": (T + ["--task", "text", "--train_file", "{pairs}"],
                              ("--train_file", "holds prompt-completion pairs", "--task prompts")),
    "oracle_task_given_pairs": (T + ["--train_file", "{pairs}"], ("--train_file", "--task oracle")),
    "prompts_task_given_lines": (P + ["{lines}"], ("--train_file", "holds no prompt-completion pairs")),
    "prompts_eval_file_of_lines": (P + ["{pairs}", "--eval_file", "{lines}"], ("--eval_file", "no prompt")),
    "prompts_without_train_file": (T + ["--task", "prompts"], ("--train_file", "--task prompts needs")),
    "missing_completion": (P + ["{missing_completion}"], ("--train_file", "line 3 has no 'completion' field")),
    "mixed_formats": (P + ["{mixed_formats}"], ("--train_file", "line 2: 'prompt' holds token ids")),
    "number_prompt": (P + ["{number_prompt}"], ("--train_file", "line 4: 'prompt' is the integer 3")),
    "id_pairs_without_tokenizer": (P + ["{id_pairs}"], ("--tokenizer", "holds token ids")),
    "eval_file_bad_row": (P + ["{pairs}", "--eval_file", "{missing_completion}"], ("--eval_file", "line 3")),
    # train: prompt flags only with prompts; the CNN's filters must fit the pair
    "max_prompt_length_on_text": (T + ["--task", "text", "--train_file", "{lines}", "--max_prompt_length", "4"],
                                  "--max_prompt_length"),
    "prompt_overflow_on_oracle": (["train", "--prompt_overflow", "drop", "--output_dir", "{out}"],
                                  "--prompt_overflow"),
    "filter_wider_than_the_pair": (P + ["{pairs}", "--max_prompt_length", "2", "--discriminator_filter_sizes", "1",
                                         "11"], ("--discriminator_filter_sizes", "[11]", "the 8 tokens")),
    "filter_wider_than_the_longest_prompt": (P + ["{pairs}", "--discriminator_filter_sizes", "1", "10"],
                                             ("--discriminator_filter_sizes", "[10]", "the 9 tokens",
                                              "longest training prompt")),
    # sample: a prompts model needs a prompt; another model takes none
    "sample_without_prompt": (["sample", "{run}"], ("--prompt", "was trained on prompt-completion pairs")),
    "sample_prompt_on_other_model": (["sample", "{other_model}", "--prompt", "the cat"],
                                     ("--prompt", "--task oracle")),
    "sample_prompts_file_missing": (["sample", "{run}", "--prompts_file", "{root}/no.txt"], "--prompts_file"),
    # evaluate: a prompts model is scored on held-out pairs; oracle and sweep flags do not apply
    "evaluate_without_references": (["evaluate", "{run}"], ("--references", "prompt-completion")),
    "evaluate_sweep": (["evaluate", "{run}", "--sweep", "--references", "{held_out}"], "--sweep"),
    "evaluate_oracle_seed": (["evaluate", "{run}", "--oracle_seed", "1", "--references", "{held_out}"],
                             "--oracle_seed"),
    "evaluate_references_of_lines": (["evaluate", "{run}", "--references", "{lines}"],
                                     ("--references", "holds no prompt-completion pairs")),
}
# The prompt width without --max_prompt_length is the longest training prompt: known once the trainer has encoded
# the pairs (models built, nothing trained).
AFTER_ENCODING = {"filter_wider_than_the_longest_prompt"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_before_any_work(case, paths, tmp_path, capsys, monkeypatch):
    template, names = CASES[case]
    out = tmp_path / "out"
    argv = [arg.format(out=out, **paths) for arg in template]
    if case in AFTER_ENCODING:
        monkeypatch.setattr(SeqGANTrainer, "train", _fail)
    else:
        monkeypatch.setattr(cli, "_build_models", _fail)
    if case != "oracle_task_given_pairs":  # the oracle task reads --train_file once its oracle is built
        monkeypatch.setattr(OracleTask, "create", _fail)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", _fail)  # no model loaded
    code, _, err = run_main(argv, capsys)
    assert_one_error(code, err, names)
    assert not (out / "seqgan_cli.json").exists()
