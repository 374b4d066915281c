"""The ``hwsim`` command: parse, load, call, render. No logic of its own.

Each command lives in ``hwsim/commands/<name>.py`` with ``add_parsers(subparsers)``; the list
below is the explicit registry.
"""

from __future__ import annotations

import argparse
import gc
import sys

from hwsim.errors import HwsimError

COMMAND_MODULES = [
    "hwsim.commands.summary",
    "hwsim.commands.compare",
    "hwsim.commands.simulate",
    "hwsim.commands.estimate",
    "hwsim.commands.targets",
    "hwsim.commands.solve",
    "hwsim.commands.export",
    "hwsim.commands.sweep",
    "hwsim.commands.validate",
    "hwsim.commands.calibrate",
]


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Cost, bit-accurate simulation and mixed-precision planning of quantized neural networks.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    return parser


#: library parameter named by an error (HwsimError.param) -> the flag that sets it
_FLAG_OF = {"shapes": "--shape", "choices": "--choices", "budgets": "--budget", "calib": "--calib",
            "weights": "--weights", "activations": "--activations", "config": "--config", "plot": "--plot",
            "resume": "--resume", "formats": "--formats", "accumulators": "--accumulators",
            "ort_threads": "--ort-threads"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except HwsimError as exc:
        flag = _FLAG_OF.get(exc.param or "")
        hint = f" [{flag}]" if flag and flag not in str(exc) else ""
        print(f"error: {exc}{hint}", file=sys.stderr)
        return exc.exit_code
    except MemoryError as exc:  # sizes the user asked for do not fit this machine
        print(f"error: out of memory ({exc or 'allocation failed'}); use smaller model parameters or --shape "
              "values, or fewer --samples", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head(1) and closed: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug in hwsim, not in the input: say so, briefly
        if args.debug:
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\n(re-run with --debug for a traceback and "
              "please report it)", file=sys.stderr)
        return 1


def entry() -> None:
    """The ``hwsim`` console script and ``python -m hwsim``: :func:`main`, then exit with its status.

    Every object still alive is first frozen out of the garbage collector (:func:`gc.freeze`), so
    the interpreter's shutdown does not traverse them all again in its collections: on this
    project's Xeon that shutdown took 0.39-0.50 s after a cold ``solve resnet18`` (0.2 s after the
    imports alone), against 0.07-0.08 s frozen (benchmarks/RESULTS.md, "Sixteenth session").
    Nothing is lost: the commands write and close their files themselves, shutdown still frees
    every object that is not in a reference cycle (running its finalizer), and the cycles are left
    to the operating system, as for any process that ends. Only the process's end does this;
    :func:`main` (what tests and Python callers use) leaves the collector alone. The same goes for
    numpy's transparent huge pages, which a process that runs one command does without
    (:func:`hwsim.heap.small_pages_for_one_run`)."""
    from hwsim import heap

    heap.small_pages_for_one_run()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
