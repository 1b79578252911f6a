"""`yingyun`: serve the platform, and administer it (noun, then verb).

Option names here are an interface that operators' scripts depend on.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import admin, backup, config, db, importer, serve
from .errors import RefusingGroup

app = typer.Typer(cls=RefusingGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Yingyun (影云) medical-imaging cloud.")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"yingyun {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Yingyun (影云) medical-imaging cloud."""


app.command("serve")(serve.serve)
app.add_typer(admin.app, name="admin")
app.command("import")(importer.import_)
app.add_typer(db.app, name="db")
app.add_typer(backup.app, name="backup")
app.command("restore")(backup.restore)
app.command("gateway")(serve.gateway)
app.command("cloud")(serve.cloud)
app.add_typer(config.app, name="config")


def main() -> None:
    from ..storage.datadir import owner_only_umask

    owner_only_umask()  # whatever this command (or a library under it) creates is the owner's only
    app(prog_name="yingyun")


if __name__ == "__main__":
    main()
