"""Exceptions that carry a user-facing one-line message.

``InputError`` is raised for bad user input (a file, a configuration key). The command-line
interface turns it into exit code 2 and prints ``str(error)``, which names the file or key and
the problem.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user: a file, an array or a configuration value.

    Parameters
    ----------
    problem:
        What is wrong, in words a user understands.
    source:
        The file path or configuration key the problem was found in (optional).
    """

    def __init__(self, problem: str, source: str | None = None) -> None:
        self.problem = problem
        self.source = None if source is None else str(source)
        super().__init__(f"{self.source}: {problem}" if self.source else problem)
