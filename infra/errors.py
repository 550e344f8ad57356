"""The one exception every layer raises for input a user can fix.

It lives apart from the command-line plumbing (:mod:`infra.cli`) because it is raised far from any
command: in dataset readers, network builders and the web server, which report it in their own way.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input a user can fix; its message names what is wrong and what is allowed."""
