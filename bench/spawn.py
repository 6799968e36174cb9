"""Runs a command and writes its wall time, peak RSS and exit code as JSON to a file.

    python -S bench/spawn.py RESULT.json COMMAND ARG...

Why a process of its own: on Linux, `exec` keeps the high-water mark of the memory it
replaces, so a command started straight from the bench's driver (which holds a whole seeded
sandbox, hundreds of MiB) reports the driver's size as its own `ru_maxrss`. Started from this
small process (standard library only, run without `site`), the figure is the command's own.
Stdin, stdout, stderr and the working directory are passed on as they are.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(result: str, command: list[str]) -> int:
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    with open(result, "w", encoding="utf-8") as out:
        # ru_maxrss is in KiB on Linux.
        json.dump({"wall_s": wall, "peak_rss_kib": usage.ru_maxrss, "exit": code}, out)
    return 0 if code == 0 else 1  # the real code (a signal's is negative) is in RESULT


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python -S bench/spawn.py RESULT.json COMMAND ARG...")
    sys.exit(main(sys.argv[1], sys.argv[2:]))
