"""The foundation's numbers in one run: Meta-World env throughput, then SAC-family update throughput.

    python experiments/bench/foundation.py

Prints env-steps/s of the official backend (MT10, inside jit) against metaworld's own gymnasium sync vector
env, and MOORE-SAC / MT-SAC / MT-MH-SAC updates/s at MT10 shapes (batch 1280, 400×3, 2 critics, 4 experts),
each as a ratio to the reference measured in the same run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import env_throughput  # noqa: E402
import update_throughput  # noqa: E402


def main() -> None:
    print("== Environment throughput (MT10, 1 env per task)")
    env_throughput.main([])
    print("\n== Update throughput (MT10 shapes)")
    update_throughput.main([])


if __name__ == "__main__":
    main()
