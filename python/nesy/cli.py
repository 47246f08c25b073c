"""The ``nesy`` command: ``info``, ``demo``, ``bench <domain>`` and per-domain commands
(``rnn demo``, ``gnn cora``, ``kge train/eval/table``, ``rules extract-demo/mine/eval/table``,
``distill demo``,
``meta tables``)."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import time
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
    from nesy._io import check_target
    from nesy.datasets import load_kg
    from nesy.kge import KGEModel
    from nesy.kge.report import PRESETS

    if args.resume and not args.checkpoint:
        raise ValueError("--resume: needs --checkpoint (the file to continue from)")
    if args.resume and not os.path.exists(args.checkpoint):
        raise FileNotFoundError(errno.ENOENT, "--checkpoint: no file to resume from",
                                args.checkpoint)
    for path in (args.save, args.checkpoint):
        if path:
            check_target(path)  # before the run, not after it
    data = load_kg(args.data)
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
    from nesy.datasets import load_kg
    from nesy.kge import KGEModel

    data = load_kg(args.data)
    m = KGEModel.load(args.model_file)
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


def _add_domain_commands(sub: Any) -> None:
    """``nesy gnn|kge|rules|distill|meta ...``."""
    from nesy.kge import MODELS

    gnn = sub.add_parser("gnn", help="graph neural networks")
    gnn_sub = gnn.add_subparsers(dest="gnn_command", required=True)
    gnn_cora = gnn_sub.add_parser("cora", help="GCN/GAT/GraphSAGE accuracy on Cora (10 seeds)")
    gnn_cora.add_argument("--seeds", type=_positive_int, default=10)
    gnn_cora.add_argument("--models", nargs="+", default=["gcn", "gat", "sage"],
                          choices=["gcn", "gat", "sage"])
    gnn_cora.set_defaults(func=_gnn_cora)

    kge = sub.add_parser("kge", help="knowledge-graph embeddings")
    kge_sub = kge.add_subparsers(dest="kge_command", required=True)
    train = kge_sub.add_parser("train", help="train a model on a data set, report test metrics")
    train.add_argument("--data", default="umls",
                       help="nations, umls, kinship, or a folder with train/valid/test.txt")
    train.add_argument("--model", default="complex", choices=MODELS)
    train.add_argument("--dim", type=_positive_int)
    train.add_argument("--loss", choices=["margin", "softplus", "self_adversarial", "bce", "ce"])
    train.add_argument("--epochs", type=_positive_int)
    train.add_argument("--lr", type=float)
    train.add_argument("--optimizer", choices=["adam", "adagrad"])
    train.add_argument("--batch-size", dest="batch_size", type=_positive_int)
    train.add_argument("--num-negatives", dest="num_negatives", type=_positive_int)
    train.add_argument("--regulariser", choices=["l2", "n3"])
    train.add_argument("--regulariser-weight", dest="regulariser_weight", type=float)
    train.add_argument("--gamma", type=float)
    train.add_argument("--seed", type=int)
    train.add_argument("--ties", default="realistic",
                       choices=["realistic", "optimistic", "pessimistic"])
    train.add_argument("--checkpoint", help=".npz checkpoint of the best epoch")
    train.add_argument("--resume", action="store_true",
                       help="continue from --checkpoint (its epoch, embeddings, optimizer state)")
    train.add_argument("--save", help="save the trained model (.npz)")
    train.set_defaults(func=_kge_train)
    ev = kge_sub.add_parser("eval", help="filtered link prediction of a saved model")
    ev.add_argument("model_file")
    ev.add_argument("--data", default="umls")
    ev.add_argument("--split", default="test", choices=["train", "valid", "test"])
    ev.add_argument("--ties", default="realistic",
                    choices=["realistic", "optimistic", "pessimistic"])
    ev.set_defaults(func=_kge_eval)
    tab = kge_sub.add_parser("table", help="every model on Nations, UMLS, Kinship (minutes)")
    tab.add_argument("--datasets", nargs="+", default=["nations", "umls", "kinship"])
    tab.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    tab.set_defaults(func=_kge_table)

    from nesy.rules.kg_report import add_commands as add_kg_rules

    rules = sub.add_parser("rules", help="rules extracted from networks; Horn rules mined from "
                                         "knowledge graphs")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    add_kg_rules(rules_sub)
    r_demo = rules_sub.add_parser(
        "extract-demo", help="fidelity / accuracy / size of extracted rules against CART")
    r_demo.add_argument("--seeds", type=_positive_int, default=5)
    r_demo.add_argument("--datasets", nargs="+", default=["iris", "wine", "breast_cancer"],
                        choices=["iris", "wine", "breast_cancer"])
    r_demo.add_argument("--profile", action="store_true",
                        help="time rule evaluation on 1e6 rows x 50 rules instead")
    r_demo.set_defaults(func=_rules_demo)

    distill = sub.add_parser("distill", help="knowledge distillation")
    distill_sub = distill.add_subparsers(dest="distill_command", required=True)
    d_demo = distill_sub.add_parser(
        "demo", help="digits: teacher MLP, small student on labels vs distilled")
    d_demo.add_argument("--seeds", type=_positive_int, default=5)
    d_demo.add_argument("--temperature", type=float, default=4.0)
    d_demo.add_argument("--alpha", type=float, default=0.5)
    d_demo.set_defaults(func=_distill_demo)

    meta = sub.add_parser("meta", help="meta-learning (Reptile, MAML, Meta-SGD)")
    meta_sub = meta.add_subparsers(dest="meta_command", required=True)
    meta_tables = meta_sub.add_parser("tables", help="the README tables (minutes each)")
    meta_tables.add_argument("tables", nargs="*",
                             default=["speed", "sine", "adaptive", "digits"],
                             choices=["speed", "sine", "adaptive", "digits", "profile"])
    meta_tables.add_argument("--quick", action="store_true",
                             help="a few iterations: checks the plumbing, numbers meaningless")
    meta_tables.set_defaults(func=_meta_tables)


def _demo(args: argparse.Namespace) -> int:
    from nesy.demo import run_demo

    return run_demo(verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nesy`` console script."""
    parser = argparse.ArgumentParser(prog="nesy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, SIMD level, threads").set_defaults(func=_info)
    demo = sub.add_parser("demo", help="train an MLP on digits, then a short benchmark")
    demo.add_argument("--verbose", type=int, default=1,
                      help="0: no progress bar; 1: progress bar (default)")
    demo.set_defaults(func=_demo)
    rnn = sub.add_parser("rnn", help="recurrent networks")
    rnn_sub = rnn.add_subparsers(dest="rnn_command", required=True)
    rnn_demo = rnn_sub.add_parser("demo", help="forecast the sunspot series against baselines")
    rnn_demo.add_argument("--series", nargs="+", default=["yearly", "monthly"],
                          choices=["yearly", "monthly"])
    rnn_demo.set_defaults(func=_rnn_demo)
    _add_domain_commands(sub)
    bench = sub.add_parser("bench", help="benchmarks against NumPy and PyTorch")
    bench_sub = bench.add_subparsers(dest="domain", required=True)
    b_optim = bench_sub.add_parser("optim", help="optimizer steps")
    b_optim.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_optim.add_argument("--repeat", type=_positive_int, default=20)
    b_optim.set_defaults(func=_bench_optim)
    b_rnn = bench_sub.add_parser("rnn", help="recurrent layers (RNN, GRU, LSTM)")
    b_rnn.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_rnn.add_argument("--repeat", type=_positive_int, default=10)
    b_rnn.set_defaults(func=_bench_rnn)
    b_gnn = bench_sub.add_parser("gnn", help="graph aggregation")
    b_gnn.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_gnn.add_argument("--repeat", type=_positive_int, default=10)
    b_gnn.set_defaults(func=_bench_gnn)
    b_kge = bench_sub.add_parser("kge", help="knowledge-graph scoring, evaluation, training")
    b_kge.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_kge.add_argument("--repeat", type=_positive_int, default=5)
    b_kge.set_defaults(func=_bench_kge)
    b_rules = bench_sub.add_parser(
        "rules", help="knowledge-graph rules: length-2 confidences vs SciPy, rule application")
    b_rules.add_argument("--quick", action="store_true", help="UMLS only (seconds)")
    b_rules.add_argument("--repeat", type=_positive_int, default=3)
    b_rules.set_defaults(func=_bench_rules)
    b_meta = bench_sub.add_parser("meta", help="FOMAML meta-iterations/s, sine protocol")
    b_meta.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_meta.set_defaults(func=_bench_meta)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        code = int(args.func(args))
    except OSError as exc:
        if exc.filename is None and not isinstance(exc, FileNotFoundError):
            raise  # not about a file the user named: a real failure, with its traceback
        print(f"nesy {args.command}: error: {exc}", file=sys.stderr)
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
