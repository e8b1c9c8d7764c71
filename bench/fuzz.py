"""The fuzz suite of tests/fuzz for longer: the same generated requests to every public RPC and to
the control HTTP API, against the same real processes, with many more examples per RPC (and,
with --seed, other ones than the fixed examples `make test` runs).

    .venv/bin/python -m bench.fuzz [--examples 2000] [--seed N] [-- extra pytest arguments]

Exit status: pytest's (0 when nothing was found). A failure prints the smallest request hypothesis
shrank it to.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000, help="examples per RPC (make test runs 20-300)")
    parser.add_argument("--seed", type=int, default=None, help="draw other examples than the fixed default ones")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    env = dict(os.environ, DIALTONE_FUZZ_EXAMPLES=str(args.examples))
    if args.seed is not None:
        env["DIALTONE_FUZZ_SEED"] = str(args.seed)
    command = [sys.executable, "-m", "pytest", "tests/fuzz/test_grpc.py", "tests/fuzz/test_control_http.py", "-q",
               "-s", "-p", "no:cacheprovider", "-o", "timeout=0", *args.pytest_args]
    print(f"fuzz: {args.examples} examples per RPC" + (f", seed {args.seed}" if args.seed is not None else ""),
          flush=True)
    started = time.monotonic()
    code = subprocess.run(command, cwd=REPO, env=env).returncode
    print(f"fuzz: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
