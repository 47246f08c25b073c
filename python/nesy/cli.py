"""The ``nesy`` command: ``info``, ``demo`` and ``bench <domain>``."""

from __future__ import annotations

import argparse
import sys
import time


def _info(_: argparse.Namespace) -> int:
    import nesy

    info = nesy.info()
    print(f"nesy {info['version']}")
    print(f"SIMD level: {info['simd']} (supported: {', '.join(info['simd_levels'])})")  # type: ignore[arg-type]
    print(f"threads: {info['threads']} (set NESY_NUM_THREADS to change)")
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
    print("the mean of 3 seeds of nesy.rnn.SequenceRegressor on the same windows as AR(p).")
    results = sunspot_demo(tuple(args.series))
    beaten = all(r.mse["GRU"] < min(r.mse["persistence"], r.mse[k])
                 for r in results.values() for k in r.mse if k.startswith("AR"))
    print("GRU beats persistence and AR(p) on every series:", "yes" if beaten else "NO")
    return 0 if beaten else 1


def _demo(args: argparse.Namespace) -> int:
    from nesy.demo import run_demo

    return run_demo(verbose=args.verbose)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nesy`` console script."""
    parser = argparse.ArgumentParser(prog="nesy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, SIMD level, threads").set_defaults(func=_info)
    demo = sub.add_parser("demo", help="train an MLP on digits, then a short benchmark")
    demo.add_argument("--verbose", type=int, default=1)
    demo.set_defaults(func=_demo)
    rnn = sub.add_parser("rnn", help="recurrent networks")
    rnn_sub = rnn.add_subparsers(dest="rnn_command", required=True)
    rnn_demo = rnn_sub.add_parser("demo", help="forecast the sunspot series against baselines")
    rnn_demo.add_argument("--series", nargs="+", default=["yearly", "monthly"],
                          choices=["yearly", "monthly"])
    rnn_demo.set_defaults(func=_rnn_demo)
    bench = sub.add_parser("bench", help="benchmarks against NumPy and PyTorch")
    bench_sub = bench.add_subparsers(dest="domain", required=True)
    b_optim = bench_sub.add_parser("optim", help="optimizer steps")
    b_optim.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_optim.add_argument("--repeat", type=int, default=20)
    b_optim.set_defaults(func=_bench_optim)
    b_rnn = bench_sub.add_parser("rnn", help="recurrent layers (RNN, GRU, LSTM)")
    b_rnn.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_rnn.add_argument("--repeat", type=int, default=10)
    b_rnn.set_defaults(func=_bench_rnn)
    b_gnn = bench_sub.add_parser("gnn", help="graph aggregation")
    b_gnn.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    b_gnn.add_argument("--repeat", type=int, default=10)
    b_gnn.set_defaults(func=_bench_gnn)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    code = int(args.func(args))
    if args.command != "info":
        print(f"done in {time.perf_counter() - t0:.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
