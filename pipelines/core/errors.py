"""The one exception a user can cause; the CLI turns it into one line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: say what is wrong, where, and what to do about it."""
