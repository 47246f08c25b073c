"""The ``nesy`` command: ``info``, ``demo``, ``bench <domain>`` and per-domain commands
(``rnn demo``, ``gnn cora``, ``kge train/eval/table``, ``rules extract-demo/mine/eval/table``,
``distill demo``,
``meta tables``)."""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def _int_at_least(minimum: int, what: str) -> Any:
    """An argparse type: an integer >= ``minimum``, else an error "expected ``what``"."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


#: argparse type of counts (``--repeat``, ``--seeds``): an integer >= 1.
_positive_int = _int_at_least(1, "a positive integer")


def _real_in(what: str, ok: Any) -> Any:
    """An argparse type: a finite float for which ``ok(value)`` holds, else an error
    "expected ``what``" (so a bad value fails before any work)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    return parse


#: ``--alpha``: a weight in [0, 1]; ``--temperature``: a finite number > 0.
_unit_interval = _real_in("a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)
_positive_real = _real_in("a finite number > 0", lambda v: v > 0.0)


def _choice_int(*choices: int) -> Any:
    """An argparse type: one of the integers ``choices``."""
    what = "one of " + ", ".join(map(str, choices))

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value not in choices:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


class _VersionAction(argparse.Action):
    """``--version``: print ``nesy <version>`` and exit (nesy is imported only then)."""

    def __init__(self, option_strings: Any, dest: str = argparse.SUPPRESS,
                 default: Any = argparse.SUPPRESS, help: str = "print nesy's version and exit",
                 ) -> None:
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0,
                         help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: Any = None) -> None:
        import nesy

        print(f"nesy {nesy.__version__}")  # stdout, as argparse's own version action
        parser.exit()


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help followed by its default, unless the help already says it or the
    default is None or False (the help then says what an unset option means)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (default is None or default is False or default is argparse.SUPPRESS
                or "default" in text or not (action.option_strings or action.nargs == "*")):
            return text
        if isinstance(default, (list, tuple)):
            return f"{text} (default: {' '.join(map(str, default))})"
        return super()._get_help_string(action) or text


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose ``--help`` shows the defaults (so do its sub-parsers: argparse
    makes them of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _missing(message: str, filename: Any) -> FileNotFoundError:
    """A FileNotFoundError whose message is ``message`` alone (no ``[Errno 2]``)."""
    from nesy.datasets.kg import MissingFileError

    return MissingFileError(errno.ENOENT, message, filename)


def _load_data(value: str, option: str = "--data") -> Any:
    """``load_kg(value)`` for a command-line option (its errors name ``option``)."""
    from nesy.datasets import load_kg

    try:
        return load_kg(value)
    except FileNotFoundError as exc:
        text = str(exc).removeprefix("name_or_path: ")
        raise _missing(f"{option}: {text}", exc.filename) from None


def _check_output(option: str, path: Any) -> None:
    """The folder an output option (``--save``, ``--checkpoint``) writes in exists, before a
    long run; the error names the option."""
    from nesy._io import check_target

    try:
        check_target(path)
    except OSError as exc:
        exc.strerror = f"{option}: {exc.strerror}"
        raise


def _os_error_message(exc: OSError) -> str:
    """One sentence for an OSError about a file the user named: its text and the path, without
    Python's ``[Errno N]`` (and without the path twice when the text names it already)."""
    if exc.strerror is None:
        return str(exc)
    if exc.filename is None or any(form in exc.strerror
                                   for form in (repr(exc.filename), str(exc.filename))):
        return str(exc.strerror)
    return f"{exc.strerror}: {exc.filename!r}"


def _info(_: argparse.Namespace) -> int:
    import nesy

    info = nesy.info()
    print(f"nesy {info['version']}")
    print(f"SIMD level: {info['simd']} (supported: {', '.join(info['simd_levels'])})")  # type: ignore[arg-type]
    print(f"threads: {info['threads']} (set NESY_NUM_THREADS to change)")
    cpus = info["thread_cpus"]
    where = f"pinned to CPUs {', '.join(map(str, cpus))}" if cpus else "not pinned"  # type: ignore[call-overload]
    print(f"thread placement: {where} (NESY_PIN_THREADS=0/1 to override)")
    print(f"arch: {info['arch']}")
    return 0


def _bench_optim(args: argparse.Namespace) -> int:
    from nesy.bench import optim as bench

    cases = bench.QUICK_CASES if args.quick else bench.CASES
    import nesy

    print("Optimizer step, float32: best of", args.repeat, "runs; 'x vs' = that time / nesy time;",
          nesy.get_num_threads(), "threads for nesy and torch")
    for name, gbs in bench.memory_limits().items():
        print(f"memory: {name}: {gbs:.1f} GB/s")
    print("limit GB/s: x *= 1 in place over the same arrays as the step (its memory limit)")
    if not bench.torch_available():
        print("(torch is not importable: PyTorch columns omitted)")
    rows = bench.run(cases, repeat=args.repeat)
    print(bench.table(rows))
    return 0


def _bench_rnn(args: argparse.Namespace) -> int:
    from nesy.bench import rnn as bench

    bench.main(quick=args.quick, repeat=args.repeat)
    return 0


def _bench_gnn(args: argparse.Namespace) -> int:
    from nesy.bench import gnn as bench

    bench.main(quick=args.quick, repeat=args.repeat)
    return 0


def _rnn_demo(args: argparse.Namespace) -> int:
    from nesy.rnn.forecast import sunspot_demo

    print("One-step-ahead forecasts of the sunspot series, final 20 % held out; GRU/LSTM are")
    print("the average forecast of 3 seeds of nesy.rnn.SequenceRegressor on the same windows")
    print("as AR(p).")
    results = sunspot_demo(tuple(args.series))
    beaten = all(r.mse["GRU"] < min(r.mse["persistence"], r.mse[k])
                 for r in results.values() for k in r.mse if k.startswith("AR"))
    print("GRU beats persistence and AR(p) on every series:", "yes" if beaten else "NO")
    return 0 if beaten else 1


def _bench_kge(args: argparse.Namespace) -> int:
    from nesy.bench import kge as bench

    bench.main(quick=args.quick, repeat=args.repeat)
    return 0


def _bench_rules(args: argparse.Namespace) -> int:
    from nesy.bench import rules as bench

    bench.main(quick=args.quick, repeat=args.repeat)
    return 0


def _bench_meta(args: argparse.Namespace) -> int:
    from nesy.meta import report

    report.main(["speed"], quick=args.quick)
    return 0


def _gnn_cora(args: argparse.Namespace) -> int:
    from nesy.gnn.report import main as cora_main

    print("GCN, GAT, GraphSAGE-mean on Cora's public split (140/500/1000), papers'")
    print("hyper-parameters, best-validation-accuracy weights restored; mean +- std test accuracy.")
    return cora_main(seeds=args.seeds, models=tuple(args.models))


def _kge_train(args: argparse.Namespace) -> int:
    from nesy.kge import KGEModel
    from nesy.kge.report import PRESETS

    if args.resume and not args.checkpoint:
        raise ValueError("--resume: needs --checkpoint (the file to continue from)")
    if args.resume and not os.path.exists(args.checkpoint):
        raise _missing(f"--checkpoint: no file {args.checkpoint!r} to resume from",
                       args.checkpoint)
    for option, path in (("--save", args.save), ("--checkpoint", args.checkpoint)):
        if path:
            _check_output(option, path)  # before the run, not after it
    data = _load_data(args.data)
    params = dict(PRESETS[args.model])
    for name in ("dim", "loss", "epochs", "lr", "optimizer", "batch_size", "num_negatives",
                 "regulariser", "regulariser_weight", "gamma", "seed"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    params.setdefault("dim", 200)
    print(f"{data!r}\ntraining {args.model} with {params}")
    m = KGEModel(args.model, checkpoint=args.checkpoint, verbose=1, **params).fit(
        data, resume=args.resume)
    for h in m.history_:
        if "valid_mrr" in h:
            print(f"  epoch {h['epoch']:4d}  loss {h['loss']:.5f}  valid MRR {h['valid_mrr']:.4f}")
    _print_metrics(m.evaluate(data.test, data.all_triples(), ties=args.ties))
    if args.save:
        m.save(args.save)
        print(f"saved {args.save}")
    return 0


def _kge_eval(args: argparse.Namespace) -> int:
    from nesy.kge import KGEModel

    if not os.path.exists(args.model_file):
        raise _missing(f"model_file: no file {args.model_file!r}", args.model_file)
    m = KGEModel.load(args.model_file)
    where = args.data
    if where is None:
        # The data the model was trained on, when its file says (files written before nesy
        # kept it, and models trained on id arrays: UMLS, as before).
        where = m.data_location_ or "umls"
        how = "stored in the model file" if m.data_location_ else "the file names no data set"
        print(f"data: {where} ({how}; --data to choose another)")
    data = _load_data(where)
    m.check_data(data)
    test = data.split(args.split)
    _print_metrics(m.evaluate(test, data.all_triples(), ties=args.ties))
    return 0


def _print_metrics(r: dict) -> None:
    from nesy.bench import format_table

    rows = [[k, str(r[k]["count"]), f"{r[k]['mrr']:.4f}", f"{r[k]['mr']:.2f}",
             f"{r[k]['hits@1']:.4f}", f"{r[k]['hits@3']:.4f}", f"{r[k]['hits@10']:.4f}"]
            for k in ("both", "head", "tail")]
    print(format_table(["direction", "queries", "MRR", "MR", "Hits@1", "Hits@3", "Hits@10"],
                       rows))


def _kge_table(args: argparse.Namespace) -> int:
    from nesy.kge.report import main as table_main

    return table_main(["--datasets", *args.datasets, "--models", *args.models])


def _rules_demo(args: argparse.Namespace) -> int:
    from nesy.rules.report import main as report_main

    argv = ["--seeds", str(args.seeds), "--datasets", *args.datasets]
    return report_main(argv + (["--profile"] if args.profile else []))


def _distill_demo(args: argparse.Namespace) -> int:
    from nesy.distill.report import main as report_main

    return report_main(["--seeds", str(args.seeds), "--temperature", str(args.temperature),
                        "--alpha", str(args.alpha)])


def _meta_tables(args: argparse.Namespace) -> int:
    from nesy.meta import report

    report.main(args.tables, quick=args.quick)
    return 0


_DATA_HELP = "nations, umls, kinship (shipped), or a folder with train.txt, valid.txt, test.txt"
_PRESET = "(default: the model's preset, nesy.kge.report.PRESETS, else KGEModel's default)"
_TIES_HELP = ("how a tie of scores ranks: realistic (the mean rank of the tied), optimistic, "
              "pessimistic")


def _add_kge_commands(sub: Any) -> None:
    """``nesy kge train|eval|table``."""
    from nesy.kge import LOSSES, MODELS

    kge = sub.add_parser("kge", help="knowledge-graph embeddings")
    kge_sub = kge.add_subparsers(dest="kge_command", required=True)
    train = kge_sub.add_parser("train", help="train a model on a data set, report test metrics")
    train.add_argument("--data", default="umls", help=_DATA_HELP)
    train.add_argument("--model", default="complex", choices=MODELS,
                       help="the scoring function")
    train.add_argument("--dim", type=_positive_int,
                       help="rank: real (TransE, DistMult) or complex (ComplEx, RotatE) "
                            "dimensions (default: 200)")
    train.add_argument("--loss", choices=LOSSES, help=f"training loss {_PRESET}")
    train.add_argument("--epochs", type=_positive_int, help=f"training epochs {_PRESET}")
    train.add_argument("--lr", type=float, help=f"learning rate {_PRESET}")
    train.add_argument("--optimizer", choices=["adam", "adagrad"], help=f"optimizer {_PRESET}")
    train.add_argument("--batch-size", dest="batch_size", type=_positive_int,
                       help=f"positive triples per batch {_PRESET}")
    train.add_argument("--num-negatives", dest="num_negatives", type=_positive_int,
                       help=f"negatives per positive {_PRESET}")
    train.add_argument("--regulariser", choices=["l2", "n3"], help=f"penalty {_PRESET}")
    train.add_argument("--regulariser-weight", dest="regulariser_weight", type=float,
                       help=f"weight of the penalty {_PRESET}")
    train.add_argument("--gamma", type=float,
                       help=f"margin of the self-adversarial loss {_PRESET}")
    train.add_argument("--seed", type=int, help="random seed (default: 0)")
    train.add_argument("--ties", default="realistic",
                       choices=["realistic", "optimistic", "pessimistic"], help=_TIES_HELP)
    train.add_argument("--checkpoint",
                       help=".npz checkpoint of the best epoch, written during training")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint (its epoch, embeddings, optimizer state)")
    train.add_argument("--save", help="save the trained model (.npz), with its labels and "
                                      "--data (the default data of 'nesy kge eval')")
    train.set_defaults(func=_kge_train)
    ev = kge_sub.add_parser("eval", help="filtered link prediction of a saved model")
    ev.add_argument("model_file", help="a model saved by 'nesy kge train --save', or a "
                                       "checkpoint")
    ev.add_argument("--data", help=f"{_DATA_HELP} (default: the data set the model was trained "
                                   f"on, as its file records; umls for files without it)")
    ev.add_argument("--split", default="test", choices=["train", "valid", "test"],
                    help="the split to evaluate")
    ev.add_argument("--ties", default="realistic",
                    choices=["realistic", "optimistic", "pessimistic"], help=_TIES_HELP)
    ev.set_defaults(func=_kge_eval)
    tab = kge_sub.add_parser("table", help="every model on Nations, UMLS, Kinship (minutes)")
    tab.add_argument("--datasets", nargs="+", default=["nations", "umls", "kinship"],
                     help="data sets to run")
    tab.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS,
                     help="models to train (their presets)")
    tab.set_defaults(func=_kge_table)


def _add_domain_commands(sub: Any) -> None:
    """``nesy gnn|kge|rules|distill|meta ...``."""
    gnn = sub.add_parser("gnn", help="graph neural networks")
    gnn_sub = gnn.add_subparsers(dest="gnn_command", required=True)
    gnn_cora = gnn_sub.add_parser("cora", help="GCN/GAT/GraphSAGE accuracy on Cora (10 seeds)")
    gnn_cora.add_argument("--seeds", type=_positive_int, default=10,
                          help="training runs per model (seeds 0, 1, ...)")
    gnn_cora.add_argument("--models", nargs="+", default=["gcn", "gat", "sage"],
                          choices=["gcn", "gat", "sage"], help="models to train")
    gnn_cora.set_defaults(func=_gnn_cora)

    _add_kge_commands(sub)

    from nesy.rules.kg_report import add_commands as add_kg_rules

    rules = sub.add_parser("rules", help="rules extracted from networks; Horn rules mined from "
                                         "knowledge graphs")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    add_kg_rules(rules_sub)
    r_demo = rules_sub.add_parser(
        "extract-demo", help="fidelity / accuracy / size of extracted rules against CART")
    r_demo.add_argument("--seeds", type=_positive_int, default=5,
                        help="runs per data set (seeds 0, 1, ...)")
    r_demo.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer"],
                        choices=["iris", "wine", "breast_cancer"], help="data sets to run")
    r_demo.add_argument("--profile", action="store_true",
                        help="time rule evaluation on 1e6 rows x 50 rules instead")
    r_demo.set_defaults(func=_rules_demo)

    distill = sub.add_parser("distill", help="knowledge distillation")
    distill_sub = distill.add_subparsers(dest="distill_command", required=True)
    d_demo = distill_sub.add_parser(
        "demo", help="digits: teacher MLP, small student on labels vs distilled")
    d_demo.add_argument("--seeds", type=_positive_int, default=5,
                        help="runs (seeds 0, 1, ...)")
    d_demo.add_argument("--temperature", type=_positive_real, default=4.0,
                        help="softmax temperature of the soft targets (> 0)")
    d_demo.add_argument("--alpha", type=_unit_interval, default=0.5,
                        help="weight in [0, 1] of the loss on the true labels (1 - alpha: "
                             "the teacher's soft targets)")
    d_demo.set_defaults(func=_distill_demo)

    meta = sub.add_parser("meta", help="meta-learning (Reptile, MAML, Meta-SGD)")
    meta_sub = meta.add_subparsers(dest="meta_command", required=True)
    meta_tables = meta_sub.add_parser("tables", help="the README tables (minutes each)")
    meta_tables.add_argument("tables", nargs="*",
                             default=["speed", "sine", "adaptive", "digits"],
                             choices=["speed", "sine", "adaptive", "digits", "profile"],
                             help="tables to print")
    meta_tables.add_argument("--quick", action="store_true",
                             help="a few iterations: checks the plumbing, numbers meaningless")
    meta_tables.set_defaults(func=_meta_tables)


def _demo(args: argparse.Namespace) -> int:
    from nesy.demo import run_demo

    return run_demo(verbose=args.verbose)


def _add_bench_commands(sub: Any) -> None:
    """``nesy bench optim|rnn|gnn|kge|rules|meta``."""
    bench = sub.add_parser("bench", help="benchmarks against NumPy and PyTorch")
    bench_sub = bench.add_subparsers(dest="domain", required=True)
    for name, what, repeat, quick, func in (
            ("optim", "optimizer steps", 20, "small sizes (seconds)", _bench_optim),
            ("rnn", "recurrent layers (RNN, GRU, LSTM)", 10, "small sizes (seconds)",
             _bench_rnn),
            ("gnn", "graph aggregation", 10, "small sizes (seconds)", _bench_gnn),
            ("kge", "knowledge-graph scoring, evaluation, training", 5,
             "small sizes, no PyKEEN (seconds)", _bench_kge),
            ("rules", "knowledge-graph rules: length-2 confidences vs SciPy, rule application",
             3, "UMLS only (seconds)", _bench_rules),
            ("meta", "FOMAML meta-iterations/s, sine protocol", None, "small sizes (seconds)",
             _bench_meta)):
        b = bench_sub.add_parser(name, help=what)
        b.add_argument("--quick", action="store_true", help=quick)
        if repeat is not None:
            b.add_argument("--repeat", type=_positive_int, default=repeat,
                           help="timed runs per case (the best is reported)")
        b.set_defaults(func=_after_machine_line(func))


def _after_machine_line(func: Callable[[argparse.Namespace], int]
                        ) -> Callable[[argparse.Namespace], int]:
    """``func`` after printing what the bench runs on (CPU, SIMD level, versions): ratios
    differ between machines, and a table should say which one made it."""
    def run(args: argparse.Namespace) -> int:
        from nesy.bench import machine

        print(machine())
        return func(args)
    return run


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``nesy`` command (every sub-command's ``--help`` shows the defaults)."""
    parser = _Parser(prog="nesy", description=__doc__)
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, SIMD level, threads").set_defaults(func=_info)
    demo = sub.add_parser("demo", help="train an MLP on digits, then a short benchmark")
    demo.add_argument("--verbose", type=_choice_int(0, 1, 2), default=1,
                      help="0: no progress bar; 1: a progress bar over epochs; 2: also one "
                           "over each epoch's batches")
    demo.set_defaults(func=_demo)
    rnn = sub.add_parser("rnn", help="recurrent networks")
    rnn_sub = rnn.add_subparsers(dest="rnn_command", required=True)
    rnn_demo = rnn_sub.add_parser("demo", help="forecast the sunspot series against baselines")
    rnn_demo.add_argument("--series", nargs="+", default=["yearly", "monthly"],
                          choices=["yearly", "monthly"], help="series to forecast")
    rnn_demo.set_defaults(func=_rnn_demo)
    _add_domain_commands(sub)
    _add_bench_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nesy`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        code = int(args.func(args))
    except OSError as exc:
        if exc.filename is None and not isinstance(exc, FileNotFoundError):
            raise  # not about a file the user named: a real failure, with its traceback
        print(f"nesy {args.command}: error: {_os_error_message(exc)}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, IndexError, KeyError, OverflowError,
            FloatingPointError) as exc:
        print(f"nesy {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if args.command != "info":
        print(f"done in {time.perf_counter() - t0:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
