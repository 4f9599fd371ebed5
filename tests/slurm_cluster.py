"""A real single-node Slurm for the tests: Debian's slurm-wlm and munge, started here, torn down after.

Needs root (the daemons run as root: no cgroups, processes tracked through /proc) and the packages, which
`.ci/run` installs. The daemons talk over 127.0.0.1, so the host name need not resolve, on free ports chosen
at start, so a cluster of a concurrent test session (or a real one on the machine) is left alone; clients
find this one through SLURM_CONF.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "srun")


def missing() -> str | None:
    """Why this machine cannot start the test cluster, or None."""
    absent = [name for name in DAEMONS if shutil.which(name) is None]
    if absent:
        return f"no {', '.join(absent)} (apt-get install slurm-wlm munge)"
    if os.geteuid() != 0:
        return "the single-node Slurm of the tests runs its daemons as root"
    return None


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _config(folder: Path, host: str, cpus: int) -> str:
    controller, node = _free_ports(2)
    return f"""\
ClusterName=mtrltest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={controller}
SlurmdPort={node}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job may start again this many seconds after it stopped (Slurm's default is 120)
AuthInfo=cred_expire=10
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
ReturnToService=2
KillWait=60
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _munge_running() -> bool:
    check = "munge -n | unmunge"
    return subprocess.run(check, shell=True, capture_output=True).returncode == 0


@contextlib.contextmanager
def single_node_slurm(folder: Path) -> Iterator[dict[str, str]]:
    """Start munge (if not running), slurmctld and slurmd on this machine; yield the clients' environment
    (SLURM_CONF); cancel every job and stop the daemons at the end."""
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    if not _munge_running():
        Path("/run/munge").mkdir(parents=True, exist_ok=True)  # its socket's folder (systemd makes it)
        subprocess.run(["munged", "--force"], check=True)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_config(folder, host, os.cpu_count() or 1))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env)
    try:
        subprocess.run(["slurmd", "-f", str(conf)], check=True, env=env)
        _wait_for_idle_node(env, folder)
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True)
        for daemon in ("slurmd", "slurmctld"):
            _stop(folder / f"{daemon}.pid")


def _stop(pid_file: Path, timeout_s: float = 20) -> None:
    """SIGTERM the daemon `pid_file` names and wait for it to go (SIGKILL after `timeout_s`)."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once it is gone
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def _wait_for_idle_node(env: dict[str, str], folder: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["sinfo", "--noheader", "--format", "%T"], env=env, capture_output=True, text=True
        ).stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    logs = "\n".join((folder / f"{d}.log").read_text()[-1500:] for d in ("slurmctld", "slurmd"))
    raise RuntimeError(f"the test Slurm's node did not become idle in {timeout_s} s:\n{logs}")
