"""How a command ends: the exit code contract and messages a teacher can act on."""
from __future__ import annotations

import os
import sys
import traceback

from qmbase.refusal import Refusal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Refusal):
    """Bad usage or bad input: the message says what happened and what to do (exit 2)."""

    status = 400


def run_guarded(run, args) -> int:
    try:
        return run(args)
    except BrokenPipeError:
        # `station … | head`: the reader has gone; nothing to tell anyone.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        print("\n已中断 / interrupted", file=sys.stderr)
        return 130
    except Refusal as exc:
        # What happened and what to do, Chinese line then English line; the class says
        # whether it was bad input (2) or a job that ran and failed (1).
        print(str(exc), file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if os.environ.get("STATION_DEBUG"):
            raise
        print("程序内部出错，操作没有完成；已保存的数据不受影响。请把下面一行告诉信息中心技术人员。\n"
              "An internal error stopped this command; saved data is not affected. Tell the "
              "information-center staff this line:\n"
              f"  {type(exc).__name__}: {exc}", file=sys.stderr)
        if sys.stderr.isatty():
            traceback.print_exc()
        return EXIT_FAILED
