"""The one exception type a user should ever see from a stage."""


class DistilleryError(Exception):
    """A problem with the user's input, config or environment.

    The message names the file, line or key at fault and says what to do. Stage entry points
    turn it into one log line and exit status 1, without a traceback.
    """
