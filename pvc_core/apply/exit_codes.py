"""The exit codes of ``dlpvc apply`` (and every ``dlpvc`` command), spelled once; imports nothing,
so that ``--help`` stays fast."""

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143

#: Exit code -> meaning, for ``--help`` and the docs.
EXIT_CODES = {
    EXIT_OK: "done: every input written (or skipped with --skip-existing)",
    EXIT_FAILED: "we failed on an input (I/O error, a fault of dlpvc); the other inputs were still done",
    EXIT_REFUSED: "the call or an input was refused (one line each says why; nothing written for it)",
    EXIT_SIGINT: "interrupted by Ctrl-C (SIGINT); temporaries removed, finished outputs kept",
    EXIT_SIGTERM: "terminated (SIGTERM, e.g. a batch system's time limit); temporaries removed",
}
