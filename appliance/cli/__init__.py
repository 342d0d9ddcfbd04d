"""The ``greffier`` command line: thin commands over the appliance and, while
``greffier serve`` runs, over its local socket."""

from ._main import cli, main

__all__ = ["cli", "main"]
