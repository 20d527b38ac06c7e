"""Errors a user can cause. The CLI prints them as one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (paths, config, models, options).

    The message must name the problem and, where there is one, the fix.
    """

    exit_code = 2
