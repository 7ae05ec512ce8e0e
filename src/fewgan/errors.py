"""The one error type a user is meant to see.

A :class:`FewganError` carries a message that says what went wrong, where, and how to
fix it. The command-line tool prints it as one line on stderr and exits with status 2;
any other exception is a bug and shows its traceback only with ``--debug``.
"""


class FewganError(Exception):
    """An error the user can fix (bad input, missing file, wrong option).

    The message is a single line; :func:`fewgan.cli.main` prints it as
    ``fewgan: error: <message>`` and exits with status 2.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
