"""nesy.cli: every option of every sub-command has a help text and ``--help`` shows its
default.

Mirrors python/nesy/cli.py (the commands themselves are tested with their domains:
tests/test_kge.py, tests/test_rules_kg.py, ...).
"""

from __future__ import annotations

import argparse

import pytest

from nesy.cli import build_parser, main


def _commands(parser, path=()):
    """``(path, parser)`` of the command and each sub-command, depth first."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _options(parser):
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


COMMANDS = [path for path, p in _commands(build_parser()) if _options(p)]


def test_the_walk_finds_every_command_with_options():
    assert {("kge", "train"), ("kge", "eval"), ("rules", "mine"), ("rules", "eval"),
            ("bench", "kge"), ("meta", "tables"), ("demo",)} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_has_help_and_its_default_in_help(path, capsys):
    parser = dict(_commands(build_parser()))[path]
    with pytest.raises(SystemExit) as exit_:
        main([*path, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for action in _options(parser):
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"nesy {' '.join(path)} {name}: no help text"
        default = action.default
        if default is None or default is False or isinstance(action, argparse._StoreFalseAction):
            continue  # the help says what unset means (checked below for the ones that matter)
        if default is argparse.SUPPRESS:
            continue  # stores nothing (--version)
        shown = " ".join(map(str, default)) if isinstance(default, list) else str(default)
        assert f"(default: {shown})" in text, f"nesy {' '.join(path)} {name}: {text}"


def test_options_without_a_fixed_default_say_what_unset_means(capsys):
    with pytest.raises(SystemExit):
        main(["kge", "eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: the data set the model was trained on, as its file records; umls for " \
           "files without it)" in text
    with pytest.raises(SystemExit):
        main(["kge", "train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS training epochs (default: the model's preset" in text
    assert "--dim DIM rank: real (TransE, DistMult) or complex (ComplEx, RotatE) dimensions " \
           "(default: 200)" in text


@pytest.mark.parametrize("command", ["mine", "eval"])
def test_rules_sampling_options_show_their_real_defaults(command, capsys):
    """--time-budget, --paths, --max-batches and --seed said "(default: the data set's preset)",
    but only the wn18rr preset sets any of them (and none sets the seed)."""
    from nesy.rules.kg_report import PRESETS, SAMPLE_TIME_BUDGET

    with pytest.raises(SystemExit):
        main(["rules", command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    wn = PRESETS["wn18rr"]
    assert (f"--time-budget TIME_BUDGET seconds of sampling (--method sample) (default: "
            f"{SAMPLE_TIME_BUDGET:g} without --max-batches, else none; {wn['time_budget']} in "
            "the wn18rr preset)") in text
    assert "--paths PATHS walks per relation per batch (--method sample) (default: 2000)" in text
    assert ("--max-batches MAX_BATCHES stop sampling after this many batches (deterministic) "
            f"(default: none, until the time budget; {wn['max_batches']} in the wn18rr "
            "preset)") in text
    assert "--seed SEED random seed of --method sample (default: 0)" in text
    for option in ("--time-budget", "--paths", "--max-batches", "--seed"):
        tail = text.split(f"{option} ", 1)[1].split(" --", 1)[0]
        assert "the data set's preset" not in tail, option


# ---------------------------------------------------------------------- s15 review (L8)
def test_version_prints_nesy_version_and_exits_0(capsys):
    """L8: ``nesy --version`` said "the following arguments are required: command"."""
    import nesy

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"nesy {nesy.__version__}\n"


@pytest.mark.parametrize("argv, message", [
    (["distill", "demo", "--alpha", "2"], "argument --alpha: expected a number in [0, 1], got 2"),
    (["distill", "demo", "--alpha", "-0.1"],
     "argument --alpha: expected a number in [0, 1], got -0.1"),
    (["distill", "demo", "--alpha", "nan"],
     "argument --alpha: expected a number in [0, 1], got nan"),
    (["distill", "demo", "--alpha", "half"],
     "argument --alpha: expected a number in [0, 1], got 'half'"),
    (["distill", "demo", "--temperature", "0"],
     "argument --temperature: expected a finite number > 0, got 0"),
    (["distill", "demo", "--temperature", "inf"],
     "argument --temperature: expected a finite number > 0, got inf"),
    (["demo", "--verbose", "-3"], "argument --verbose: expected one of 0, 1, 2, got -3"),
    (["demo", "--verbose", "yes"], "argument --verbose: expected one of 0, 1, 2, got 'yes'"),
])
def test_bad_option_values_fail_before_any_work(argv, message, capsys, monkeypatch):
    """L8: ``nesy distill demo --alpha 2`` trained for ~5 s before the Distiller refused alpha;
    ``nesy demo --verbose -3`` was accepted. Now argparse refuses them (exit 2) and the command
    never runs."""
    import nesy.cli as cli

    ran = []
    monkeypatch.setattr(cli, "_distill_demo", lambda args: ran.append(args) or 0)
    monkeypatch.setattr(cli, "_demo", lambda args: ran.append(args) or 0)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and not ran
    assert capsys.readouterr().err.strip().endswith(f"error: {message}")


def test_good_option_values_reach_the_command(monkeypatch):
    import nesy.cli as cli

    seen = []
    monkeypatch.setattr(cli, "_distill_demo", lambda args: seen.append(args) or 0)
    monkeypatch.setattr(cli, "_demo", lambda args: seen.append(args) or 0)
    assert main(["distill", "demo", "--alpha", "1", "--temperature", "0.5"]) == 0
    assert main(["demo", "--verbose", "2"]) == 0
    assert (seen[0].alpha, seen[0].temperature, seen[1].verbose) == (1.0, 0.5, 2)


@pytest.mark.parametrize("argv,option", [(["mine", "--data"], "--data"),
                                         (["eval", "--data"], "--data"),
                                         (["table", "--datasets", "nations"], "--datasets")])
def test_rules_name_the_data_option_of_a_missing_data_set(argv, option, tmp_path, monkeypatch,
                                                          capsys):
    """``nesy rules mine --data missing`` named ``name_or_path:``, load_kg's argument, where
    ``nesy kge`` names ``--data:``; ``nesy rules table`` found a missing data set only after
    mining the ones before it."""
    monkeypatch.chdir(tmp_path)
    assert main(["rules", *argv, "missing"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nesy rules: error: {option}: ") and "name_or_path" not in err


@pytest.mark.parametrize("argv", [["kge", "train", "--epochs", "1"],
                                  ["kge", "eval", "model.npz"]])
def test_a_missing_split_file_of_data_is_named_once(argv, tmp_path, monkeypatch, capsys):
    """``nesy kge train --data folder`` without ``folder/test.txt`` printed the path twice
    ("...: folder/test.txt: no such file (...): 'folder/test.txt'"): the error message only
    left the path out when the text had it quoted."""
    folder = tmp_path / "kg"
    folder.mkdir()
    for split in ("train", "valid"):
        (folder / f"{split}.txt").write_text("a\tr\tb\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.npz").write_bytes(b"")  # never read: --data fails first
    import nesy.kge

    monkeypatch.setattr(nesy.kge.KGEModel, "load", classmethod(lambda cls, path: None))
    assert main([*argv, "--data", "kg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("nesy kge: error: --data: kg/test.txt: no such file (a knowledge-graph "
                   "folder holds train.txt, valid.txt and test.txt)")


def test_every_bench_first_names_the_machine(capsys, monkeypatch):
    # Every `nesy bench <domain>` prints one line naming the CPU, nesy's SIMD level and the
    # versions before its tables (the domains' own output is replaced by a stub here).
    import nesy
    from nesy import cli
    from nesy.bench import machine

    line = machine()
    assert line.startswith("machine: ") and "\n" not in line
    info = nesy.info()
    assert f"SIMD level {info['simd']}" in line and f"{info['threads']} threads" in line
    assert "NumPy " in line
    bench = next(a for a in build_parser()._actions
                 if isinstance(a, argparse._SubParsersAction)).choices["bench"]
    domains = next(a for a in bench._actions
                   if isinstance(a, argparse._SubParsersAction)).choices
    assert set(domains) == {"optim", "rnn", "gnn", "kge", "rules", "meta"}
    for domain in domains:
        name = f"_bench_{domain}"
        monkeypatch.setattr(cli, name, lambda args, d=domain: print(f"tables of {d}") or 0)
        assert main(["bench", domain]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == line and out[1] == f"tables of {domain}", out


# ---------------------------------------------------------------------- s22 review (L6)
def test_python_dash_m_nesy_runs_the_cli():
    """L6: ``python -m nesy`` said "No module named nesy.__main__"; it runs the console
    script's ``main`` (one run: starting Python and nesy takes seconds)."""
    import subprocess
    import sys

    import nesy

    done = subprocess.run([sys.executable, "-m", "nesy", "--version"], capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, f"nesy {nesy.__version__}\n")
