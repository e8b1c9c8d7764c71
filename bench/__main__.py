"""`make bench`: run every benchmark module in bench/ in turn (or those named on the command line)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PER_BENCH_LIMIT_S = 900


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_"))
    failed = []
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=HERE.parent,
                                  timeout=PER_BENCH_LIMIT_S).returncode
        except subprocess.TimeoutExpired:
            code = -1
        print(f"=== bench.{name}: exit {code} in {time.monotonic() - started:.0f} s ===", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
