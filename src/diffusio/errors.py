"""Errors that name a problem a user can fix."""


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""


class Cancelled(Exception):
    """Long work stopped early because its caller's ``should_stop()`` said so (a time limit)."""
