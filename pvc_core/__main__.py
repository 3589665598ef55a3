"""``python -m pvc_core ...`` is ``dlpvc ...``; :func:`run` is the ``dlpvc`` entry point."""

import sys


def run() -> int:
    """The ``dlpvc`` command; Ctrl-C while it starts (importing) exits 130 with one line, no traceback."""
    try:
        # lazy: inside the try, so that Ctrl-C while pvc_core.cli loads exits 130 with one line, not a traceback
        from pvc_core.cli import main

        return main()
    except KeyboardInterrupt:
        try:
            print("dlpvc: interrupted (SIGINT)", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        return 130


if __name__ == "__main__":
    sys.exit(run())
