"""Real signed APKs for the tests, made once per machine by scripts/make-apks.sh and cached.

The cache folder is named after the script's own sha256, so a changed script builds
afresh. Whoever takes the lock first builds; the others wait for it and use what it made:
the test processes of one run (pytest-xdist's workers), and scripts/test.sh, which starts
the build beside the lint and type check so that the tests find it made.

    python tests/apks.py CACHE   build into CACHE/<name> unless it is there (CACHE is
                                 pytest's cache folder for values, .pytest_cache/d)
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make-apks.sh"


def name() -> str:
    """Return the cache folder's name: the script's sha256 in it."""
    return "mdm-apks-" + hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:16]


def build(folder: Path) -> dict[str, Path]:
    """Make the APKs in `folder` unless a finished build is there; return them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "complete"
    with open(folder.parent / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not stamp.exists():
            subprocess.run(["bash", str(SCRIPT), str(folder)], check=True, timeout=300,
                           capture_output=True)
            stamp.write_text(folder.name)
    return {p.stem: p for p in folder.glob("*.apk")}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    build(Path(sys.argv[1]) / name())
