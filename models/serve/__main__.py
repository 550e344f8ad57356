"""``python -m models.serve``: runs the server's command line (see models.serve.cli for its flags)."""
from infra import cli
from models.serve.cli import main

cli.run(main)
