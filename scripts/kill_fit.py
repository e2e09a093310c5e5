"""Kill `segue fit` on a real home at given delays and check the models in use still answer.

    python scripts/kill_fit.py --home H                      # SIGKILL after 8, 25 and 45 s
    python scripts/kill_fit.py --home H --delays 3 10 --seed "Ed Sheeran"

For each delay: start `segue --home H fit -q`, SIGKILL it after that many seconds, then print
whether the set in use changed, the exit code of `segue models --verify`, whether
`segue recommend SEED -n 5 -f json` answers exactly as before, and what lies in
``artifacts/generations``. Then one full fit, which must remove what the killed ones left.
The home needs a catalog and a fitted set (e.g. the demo catalog after `segue --home H fit`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--delays", type=float, nargs="+", default=[8, 25, 45])
    parser.add_argument("--seed", default="Ed Sheeran")
    args = parser.parse_args(argv)
    home: Path = args.home
    gens = home / "artifacts" / "generations"

    def pointer() -> str:
        return str(json.loads((home / "artifacts" / "current.json").read_text())["generation"])

    def segue(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "segue", "--home", str(home), *a],
            capture_output=True,
            text=True,
            check=False,
        )

    before = pointer()
    reference = segue("recommend", args.seed, "-n", "5", "-f", "json").stdout
    ok = True
    for delay in args.delays:
        proc = subprocess.Popen(
            [sys.executable, "-m", "segue", "--home", str(home), "fit", "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.kill()
        proc.wait()
        verify = segue("models", "--verify").returncode
        same = segue("recommend", args.seed, "-n", "5", "-f", "json").stdout == reference
        unchanged = pointer() == before
        ok = ok and verify == 0 and (same or not unchanged)
        print(
            f"kill -9 after {delay:g} s: set in use unchanged={unchanged}, "
            f"models --verify exit {verify}, same answers={same}, "
            f"generations={sorted(os.listdir(gens))}",
            flush=True,
        )
    started = time.perf_counter()
    full = segue("fit", "-q")
    left = [n for n in os.listdir(gens) if n.startswith(".")]
    print(
        f"full fit: exit {full.returncode} in {time.perf_counter() - started:.0f} s, "
        f"leftovers {left}, generations {sorted(os.listdir(gens))}, "
        f"models --verify exit {segue('models', '--verify').returncode}"
    )
    return 0 if ok and full.returncode == 0 and not left else 1


if __name__ == "__main__":
    sys.exit(main())
