"""Run Python scripts as `python SCRIPT ARG...` runs each, in a process of its own, but forked
from one that has imported the bot already: importing it costs about a second a process, paid
here once rather than once a script. A script's own imports still run, statement by statement,
in its own process (a module moved away still fails the script's import).

    python -m tests.forked_scripts ARG... -- SCRIPT...

prints a JSON list of {"script", "returncode", "stdout", "stderr"}, one per script, in order.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
import tempfile
import traceback
from typing import Any

# What most of bench/ imports; each is imported by the scripts again, from this process's cache.
PRELOAD = ("bot.runtime", "bot.console.workspace", "tests.servers", "aiohttp", "psycopg")


def _exit_code(exc: SystemExit) -> int:
    """What `python SCRIPT` exits with after this SystemExit (a message is printed first)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_in_child(script: str, args: list[str]) -> int:
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))  # as `python SCRIPT` sets it
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def run_forked(script: str, args: list[str]) -> dict[str, Any]:
    """Fork, run `script` with `args` in the child as its `__main__`, wait for it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                code = _run_in_child(script, args)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return {
            "script": script,
            "returncode": os.waitstatus_to_exitcode(status),
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def main(argv: list[str]) -> None:
    split = argv.index("--")
    args, scripts = argv[:split], argv[split + 1 :]
    for module in PRELOAD:
        importlib.import_module(module)
    results = [run_forked(script, args) for script in scripts]
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
