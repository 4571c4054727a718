"""Errors that name a problem a user can fix."""


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""
