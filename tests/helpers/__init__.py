"""Helpers shared by the tests of several folders (not tests themselves; ``tests/`` is on sys.path)."""
