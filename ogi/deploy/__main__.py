"""`python -m ogi.deploy export|sim-robot|deploy ...`: the deployment verbs without the full `ogi` entry point."""

import typer

from ogi.deploy.commands import register

app = typer.Typer(
    help="OGI deployment: export, simulated robot, runtime.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
register(app)

if __name__ == "__main__":
    app()
