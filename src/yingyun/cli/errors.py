"""The command line's edge: what a command refuses with is said once, here.

Every command lets the errors of the services it calls go up; the root group
(`RefusingGroup`) turns those `refusal` knows into `error: <what was wrong>` on
stderr and its exit status, and the runtime opened for the command is closed
on the way. Anything else is a bug and keeps its traceback. Every refusal
exits 1, as it always has (2 is the usage errors' and `import`'s "some files
were not stored"); an operator's script tells refusals apart by the words.

The internet-hospital commands (doctors, consultations) run the services the
partners' API runs, and say a refusal with the code that API would answer
(`20028 医生不存在: no doctor 'd9'`), so an operator reads what a partner reads
(`PartnersWordsGroup`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from typer.core import TyperGroup

from ..core.errors import YingyunError
from ..runtime import OpenRefused
from ..tenancy import InUse
from ..web.vendor import THIRDPARTY, vendor_code, vendor_message
from .output import fail

REFUSED = 1  # the exit status of every refusal (2 is the usage errors' and `import`'s failed files')


def refusal(error: BaseException) -> tuple[str, int] | None:
    """What the command line says for `error`, and its exit status; None when it is not a refusal."""
    if isinstance(error, (YingyunError, OpenRefused)):
        return str(error), REFUSED
    if isinstance(error, ValueError):
        from ..cloud.dicomweb.tokens import TokenError  # (the DICOMweb package is imported only if needed)

        if isinstance(error, TokenError):
            return str(error), REFUSED
    return None


@contextmanager
def advise_if_in_use(advice: str) -> Iterator[None]:
    """A removal refused because something still holds what it names: say what holds it, and what to do instead."""
    try:
        yield
    except InUse as e:
        fail(f"{e}: nothing was changed; {advice}", REFUSED)


class RefusingGroup(TyperGroup):
    """The root `yingyun` group: the one place a refusal becomes its message and exit status."""

    def invoke(self, ctx: Any) -> Any:  # (click's Context, which typer's vendors and does not export)
        try:
            return super().invoke(ctx)
        except Exception as error:
            said = refusal(error)
            if said is None:
                raise
            fail(*said)


class PartnersWordsGroup(TyperGroup):
    """The group of a command family that runs the partners' API's services: a
    refusal is said led by the code that API answers, then its message."""

    def invoke(self, ctx: Any) -> Any:  # (click's Context, as in RefusingGroup)
        try:
            return super().invoke(ctx)
        except YingyunError as error:
            fail(f"{int(vendor_code(error, THIRDPARTY))} {vendor_message(error, THIRDPARTY)}", REFUSED)
