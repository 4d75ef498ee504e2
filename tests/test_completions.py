"""`log_completions`: the pages, JSON sidecars, index and tracker tables of `seqgan_hf.completions`.

The pages are parsed with `html.parser` (no browser): every token's shading is recomputed from the reward the
g-step really produced (recorded by a spy on the algorithm's `on_rewards` hook), so a wrong colour scale or a
token <-> reward shift fails here.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import types
from html.parser import HTMLParser

import pytest
import torch

from seqgan_hf import SeqGANTrainer
from seqgan_hf.completions import Completion, CompletionLog, CompletionLogger, render_page, write_index
from seqgan_hf.text import build_tokenizer
from tests.builders import CORPUS, quick_config, tiny_cnn, tiny_lstm

# The documented scale, written out independently of the module: reward 0 -> white, 1 -> #16a34a, linear per channel.
GREEN = (0x16, 0xA3, 0x4A)


def expected_colour(reward: float) -> str:
    weight = min(1.0, max(0.0, reward))
    red, green, blue = (round(255 + weight * (channel - 255)) for channel in GREEN)
    return f"#{red:02x}{green:02x}{blue:02x}"


class PageParser(HTMLParser):
    """Rows of a step page: P(real) and the tokens (text and attributes) of each completion."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[dict] = []
        self.links: list[str] = []
        self._token: dict | None = None
        self._preal: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and attrs.get("class") == "completion":
            self.rows.append({"p_real": None, "tokens": []})
        elif tag == "td" and attrs.get("class") == "preal" and self.rows:
            self.rows[-1]["p_real"] = float(attrs["data-p-real"]) if "data-p-real" in attrs else None
        elif tag == "span" and attrs.get("class") == "tok" and "data-reward" in attrs:
            style = dict(part.split(":", 1) for part in attrs["style"].split(";"))
            self._token = {"text": "", "id": int(attrs["data-token-id"]), "reward": float(attrs["data-reward"]),
                           "background": style["background-color"], "title": attrs["title"]}
        elif tag == "a":
            self.links.append(attrs["href"])

    def handle_data(self, data):
        if self._token is not None:
            self._token["text"] += data

    def handle_endtag(self, tag):
        if tag == "span" and self._token is not None:
            self.rows[-1]["tokens"].append(self._token)
            self._token = None


def parse(path: str) -> PageParser:
    parser = PageParser()
    with open(path, encoding="utf-8") as handle:
        parser.feed(handle.read())
    return parser


def word_tokenizer():
    return build_tokenizer(CORPUS)


def make_trainer(tmp_path, tokenizer, reward_funcs=None, **overrides):
    values = dict(mle_epochs=0, adversarial_iterations=2, logging_steps=1, report_to="none",
                  log_completions=True, num_completions_to_log=4)
    values.update(overrides)
    return SeqGANTrainer(tiny_lstm(len(tokenizer)), tiny_cnn(len(tokenizer), dropout=0.0),
                         quick_config(tmp_path, **values), train_dataset=_dataset(), processing_class=tokenizer,
                         reward_funcs=reward_funcs)


def _dataset():
    import datasets

    return datasets.Dataset.from_dict({"text": CORPUS})


def add_spy(trainer) -> dict[int, dict]:
    """Record, per training unit, what the g-step handed the logger, and D's P(real) recomputed directly."""
    seen: dict[int, dict] = {}
    capture = trainer.algorithm.on_rewards
    pad = trainer.pad_token_id

    def spy(sequences, rewards, keep, prompts):
        assert prompts is None  # these runs have no prompts
        rows = sequences[: trainer.args.num_completions_to_log]
        kept = keep[: rows.shape[0]]
        discriminator = trainer.full_model("discriminator")
        was_training = discriminator.training
        discriminator.eval()
        with torch.no_grad():
            logits = discriminator(input_ids=rows.masked_fill(~kept, pad), attention_mask=kept.long()).logits
        discriminator.train(was_training)
        seen[trainer.state.global_step + 1] = dict(
            sequences=rows.clone(), rewards=rewards[: rows.shape[0]].clone(), keep=kept.clone(),
            p_real=torch.softmax(logits.float(), dim=-1)[:, 1],
        )
        capture(sequences, rewards, keep, prompts)

    trainer.algorithm.on_rewards = spy
    return seen


def test_pages_shade_every_token_by_its_reward(tmp_path):
    tokenizer = word_tokenizer()
    trainer = make_trainer(tmp_path, tokenizer)
    seen = add_spy(trainer)
    trainer.train()
    folder = os.path.join(trainer.args.output_dir, "completions")
    # mle_epochs=0 and one D round: the adversarial units are training steps 2 and 3, both logging steps.
    assert sorted(seen) == [2, 3]
    assert sorted(os.listdir(folder)) == ["index.html", "step_2.html", "step_2.json", "step_3.html", "step_3.json"]
    assert parse(os.path.join(folder, "index.html")).links == ["step_3.html", "step_2.html"]  # newest first
    for step, truth in seen.items():
        page = parse(os.path.join(folder, f"step_{step}.html"))
        sidecar = json.load(open(os.path.join(folder, f"step_{step}.json")))
        assert sidecar["step"] == step and sidecar["run_id"] == trainer.run_id
        assert len(page.rows) == len(sidecar["completions"]) == 4
        for row, (shown, stored) in enumerate(zip(page.rows, sidecar["completions"])):
            keep = truth["keep"][row]
            ids = truth["sequences"][row][keep].tolist()
            rewards = truth["rewards"][row][keep].tolist()
            assert [token["id"] for token in shown["tokens"]] == ids == stored["token_ids"]
            assert [token["text"] for token in shown["tokens"]] == [tokenizer.decode([i]) for i in ids]
            text = tokenizer.decode(ids[:-1] if ids[-1] == tokenizer.eos_token_id else ids)
            assert stored["prompt"] == "" and stored["completion"] == text
            for token, reward in zip(shown["tokens"], rewards, strict=True):
                assert token["reward"] == pytest.approx(reward, abs=1e-6)
                assert token["background"] == expected_colour(reward), (row, token, reward)
                assert token["title"] == f"reward {reward:.4f}"
            assert stored["rewards"] == pytest.approx(rewards, abs=1e-7)
            # D's P(real), recomputed from the discriminator's logits at the g-step, beside the row...
            assert shown["p_real"] == pytest.approx(float(truth["p_real"][row]), abs=1e-6)
            # ...is also, independently, the Monte Carlo reward of the last kept token (the sequence's own reward).
            assert rewards[-1] == pytest.approx(float(truth["p_real"][row]), abs=1e-5)
    # The rewards vary, so a shifted alignment could not match by chance.
    assert len({round(r, 4) for truth in seen.values() for r in truth["rewards"][truth["keep"]].tolist()}) > 3


def test_p_real_is_the_discriminator_score_with_mixed_rewards(tmp_path):
    def constant(completions, **kwargs):
        return [0.25] * len(completions)

    trainer = make_trainer(tmp_path, word_tokenizer(), reward_funcs=["discriminator", constant],
                           adversarial_iterations=1)
    seen = add_spy(trainer)
    trainer.train()
    truth = seen[2]
    page = parse(os.path.join(trainer.args.output_dir, "completions", "step_2.html"))
    for row, shown in enumerate(page.rows):
        p_real = float(truth["p_real"][row])
        assert shown["p_real"] == pytest.approx(p_real, abs=1e-6)
        assert shown["tokens"][-1]["reward"] == pytest.approx(0.5 * p_real + 0.5 * 0.25, abs=1e-5)


def test_off_writes_nothing(tmp_path):
    trainer = make_trainer(tmp_path, word_tokenizer(), log_completions=False, adversarial_iterations=1)
    assert trainer.completion_logger is None and trainer.algorithm.on_rewards is None
    trainer.train()
    assert not os.path.exists(os.path.join(trainer.args.output_dir, "completions"))


def test_tensorboard_receives_the_table(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    trainer = make_trainer(tmp_path, word_tokenizer(), report_to="tensorboard")
    trainer.train()
    texts: dict[int, str] = {}
    for path in glob.glob(os.path.join(trainer.args.output_dir, "runs", "**", "events.out.tfevents.*"),
                          recursive=True):
        accumulator = EventAccumulator(os.path.dirname(path))
        accumulator.Reload()
        if "completions/text_summary" in accumulator.Tags()["tensors"]:
            for event in accumulator.Tensors("completions/text_summary"):
                texts[event.step] = tensor_util.make_ndarray(event.tensor_proto).item().decode()
    assert sorted(texts) == [2, 3]
    sidecar = json.load(open(os.path.join(trainer.args.output_dir, "completions", "step_3.json")))
    first = sidecar["completions"][0]
    assert texts[3].splitlines()[0] == "| step | prompt | completion | P(real) from D | per-token rewards |"
    assert f"| {first['completion']} | {first['real_probability']:.4f} |" in texts[3]
    assert " ".join(f"{r:.3f}" for r in first["rewards"]) in texts[3]


def _log(step, run_id="run", tokens=("a", "b"), rewards=(0.1, 0.9)):
    return CompletionLog(step=step, run_id=run_id, completions=[Completion(
        tokens=list(tokens), token_ids=list(range(len(tokens))), rewards=list(rewards), completion="".join(tokens),
        real_probability=0.75)])


def test_special_characters_are_escaped(tmp_path):
    tokens = ["<b>", "&", '"q"', "a'b", "</td>", " "]
    path = tmp_path / "page.html"
    path.write_text(render_page(_log(7, tokens=tokens, rewards=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0])))
    page = parse(str(path))
    assert [token["text"] for token in page.rows[0]["tokens"]] == tokens
    assert [token["background"] for token in page.rows[0]["tokens"]] == [
        "#ffffff", expected_colour(0.2), expected_colour(0.4), expected_colour(0.6), expected_colour(0.8), "#16a34a"]
    html_text = path.read_text()
    assert "<b>" not in html_text and "&lt;b&gt;" in html_text and "<script" not in html_text
    assert "http://" not in html_text and "https://" not in html_text  # self-contained


def test_index_appends_on_resume_and_skips_other_runs(tmp_path):
    folder = tmp_path / "completions"
    folder.mkdir()
    for step, run_id in ((5, "other"), (2, "run"), (3, "run")):
        (folder / f"step_{step}.json").write_text(_log(step, run_id).to_json())
    write_index(str(folder), "run")
    assert parse(str(folder / "index.html")).links == ["step_3.html", "step_2.html"]
    (folder / "step_4.json").write_text(_log(4).to_json())  # a resumed run's next page
    write_index(str(folder), "run")
    assert parse(str(folder / "index.html")).links == ["step_4.html", "step_3.html", "step_2.html"]


def test_wandb_and_trackio_tables(tmp_path, monkeypatch):
    """wandb and trackio are not installed here: their branches run against stand-in modules."""
    sent: dict[str, list] = {"wandb": [], "trackio": []}

    class Table:
        def __init__(self, columns=None, data=None, dataframe=None):
            self.columns = columns if dataframe is None else list(dataframe.columns)
            self.data = data if dataframe is None else dataframe.values.tolist()

    wandb = types.SimpleNamespace(run=object(), Table=Table, log=lambda values: sent["wandb"].append(values))
    trackio = types.SimpleNamespace(Table=Table, log=lambda values: sent["trackio"].append(values))
    callbacks = [type("WandbCallback", (), {"_initialized": True, "_wandb": wandb})(),
                 type("TrackioCallback", (), {"_initialized": True, "_trackio": trackio})(),
                 type("TensorBoardCallback", (), {"tb_writer": None})()]  # not started: skipped without error
    if "pandas" not in sys.modules:
        pytest.importorskip("pandas")
    logger = CompletionLogger(str(tmp_path), 2)
    logger.capture(torch.tensor([[3, 4, 5]]), torch.tensor([[0.2, 0.4, 0.6]]), torch.tensor([[True, True, False]]))
    log = logger.write(9, callbacks, is_main=True)
    assert log.completions[0].tokens == ["3", "4"] and log.completions[0].real_probability is None
    for name in ("wandb", "trackio"):
        (values,) = sent[name]
        assert values["train/global_step"] == 9
        table = values["completions"]
        assert table.columns == ["step", "prompt", "completion", "P(real) from D", "per-token rewards"]
        assert table.data[0][:3] == [9, "", "3 4"] and table.data[0][4] == "0.200 0.400"
    assert (tmp_path / "completions" / "step_9.html").exists()


def test_not_main_process_writes_nothing(tmp_path):
    logger = CompletionLogger(str(tmp_path), 2)
    logger.capture(torch.tensor([[3, 4]]), torch.tensor([[0.2, 0.4]]), torch.tensor([[True, True]]))
    assert logger.write(1, [], is_main=False) is not None
    assert not (tmp_path / "completions").exists()


def test_config_refuses_bad_values(tmp_path):
    with pytest.raises(ValueError, match="num_completions_to_log"):
        quick_config(tmp_path, log_completions=True, num_completions_to_log=0)
    quick_config(tmp_path, log_completions=False, num_completions_to_log=0)  # unused: accepted
    with pytest.raises(ValueError, match="log_completions.*logging_strategy='no'"):
        quick_config(tmp_path, log_completions=True, logging_strategy="no")


def test_resumed_run_appends_to_the_index(tmp_path):
    from tests.builders import stop_at

    tokenizer = word_tokenizer()
    settings = dict(adversarial_iterations=3, save_strategy="steps", save_steps=1)
    first = make_trainer(tmp_path, tokenizer, **settings)
    first.add_callback(stop_at(2))
    first.train()
    folder = os.path.join(first.args.output_dir, "completions")
    assert parse(os.path.join(folder, "index.html")).links == ["step_2.html"]
    second = make_trainer(tmp_path, tokenizer, **settings)
    second.train(resume_from_checkpoint=True)
    assert second.run_id == first.run_id
    assert parse(os.path.join(folder, "index.html")).links == ["step_4.html", "step_3.html", "step_2.html"]
