"""The one exception type for bad user input.

The command line turns it into a single ``error: ...`` line and exit code 2.
It subclasses ValueError so library callers can catch it the usual way.
"""


class InputError(ValueError):
    """Bad input from the user: a scene, a file, an option value, or a place to write that cannot be written."""
