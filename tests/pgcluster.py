"""A throw-away PostgreSQL cluster on loopback, for the tests and the benchmark.

`initdb` and `pg_ctl` from the distribution's packages (/usr/lib/postgresql/<version>/bin)
make a cluster in a temporary folder, listening on 127.0.0.1 at a free port, trusting
loopback connections (nobody else can reach it). `initdb` refuses to run as root, so as
root the cluster runs as the `postgres` user (or `nobody`). Durability is switched off:
the cluster lives only as long as the test run. It is stopped by its postmaster's PID.

    python tests/pgcluster.py start FOLDER   prints "URL PID", returns when it is ready
    python tests/pgcluster.py stop PID       stops it (bounded wait), then kills it
    python tests/pgcluster.py folder         makes and prints a folder for it (in memory
                                             when /dev/shm is there, else a temporary one)
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROLE = "mdm"
# Where a cluster's folder goes when the machine has a memory file system: a test run's
# cluster needs no disk, and the many small databases it makes and drops are quicker there.
MEMORY = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@dataclass(frozen=True)
class Cluster:
    url: str  # of the maintenance database `postgres`, as the superuser ROLE
    pid: int
    folder: Path

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + "/" + name


def binaries() -> Path:
    """Return the newest PostgreSQL server binaries' folder, or say how to install them."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are missing: run scripts/setup.sh"
                           " (it installs the distribution's postgresql package)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> tuple[list[str], str | None]:
    """Return the command prefix that runs the server unprivileged, and that user."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists")


def start(folder: Path) -> Cluster:
    """Make and start a cluster in `folder` (made if missing); return once it answers."""
    bin_dir, (prefix, user) = binaries(), _as_user()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    subprocess.run([*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", ROLE,
                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    last = ""
    for _ in range(5):  # a port taken between the probe and the start: try another
        port = _free_port()
        options = (f"-c listen_addresses=127.0.0.1 -c port={port}"
                   f" -c unix_socket_directories={folder} -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        done = subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-w",
                               "-t", "60", "-l", str(folder / "server.log"), "-o", options,
                               "start"], capture_output=True, text=True, timeout=90)
        if done.returncode == 0:
            pid = int((data / "postmaster.pid").read_text().split()[0])
            return Cluster(f"postgresql://{ROLE}@127.0.0.1:{port}/postgres", pid, folder)
        last = done.stdout + done.stderr
    raise RuntimeError(f"the test PostgreSQL cluster did not start: {last}")


def _reaped(pid: int) -> bool:
    """Say whether the process has gone; collect it if it is our child (a test process made
    a subreaper by the lab adopts the postmaster, which would otherwise stay a zombie)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    os.kill(pid, 0)  # ProcessLookupError once it has gone
    return False


def stop(pid: int, folder: Path | None = None) -> None:
    """Stop the cluster whose postmaster is `pid` (fast shutdown), and remove its folder."""
    try:
        os.kill(pid, signal.SIGINT)
        for _ in range(300):  # 30 s at most
            if _reaped(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            _reaped(pid)
    except ProcessLookupError:
        pass
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "start":
        cluster = start(Path(argv[1]))
        print(cluster.url, cluster.pid)
        return 0
    if argv == ["folder"]:
        print(tempfile.mkdtemp(prefix="mdm-pg-", dir=MEMORY))
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        stop(int(argv[1]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
