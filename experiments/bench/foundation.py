"""The foundation's numbers in one run: Meta-World env throughput, then SAC-family update throughput.

    python experiments/bench/foundation.py [--small]

Prints env-steps/s of the official backend (MT10, inside jit) against metaworld's own gymnasium sync vector
env, and MOORE-SAC / MT-SAC / MT-MH-SAC updates/s at MT10 shapes (batch 1280, 400×3, 2 critics, 4 experts),
each as a ratio to the reference measured in the same run. `--small` runs both parts with their own
`--small` (MT1 on one env for a few steps; 64-wide networks, batch 320), for a quick check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import env_throughput  # noqa: E402
import update_throughput  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="both parts at their --small sizes")
    args = parser.parse_args(argv)
    flags = ["--small"] if args.small else []
    print(f"== Environment throughput ({'MT1, 1 env' if args.small else 'MT10, 1 env per task'})")
    env_throughput.main(flags)
    print("\n== Update throughput (MT10 shapes)")
    update_throughput.main(flags)


if __name__ == "__main__":
    main()
