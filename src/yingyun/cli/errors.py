"""What a command says and exits with when a service refuses (`core.errors`): the CLI's edge mapping.

Every refusal exits 1, as it always has (2 is `import`'s "some files were not
stored"); an operator's script tells refusals apart by the words. The
internet-hospital commands (doctors, consultations) run the services the
partners' API runs, and say a refusal with the code that API would answer
(`20028 医生不存在: no doctor 'd9'`), so an operator reads the same as a partner.
"""

from __future__ import annotations

from ..core.errors import YingyunError
from ..web.vendor import THIRDPARTY, vendor_code, vendor_message

REFUSED = 1


def exit_code(exc: YingyunError) -> int:
    """The exit status of a command refused by `exc`."""
    return REFUSED


def describe(exc: YingyunError, *, vendor: bool = False) -> str:
    """`exc` in the operator's words; with `vendor`, led by the partners' API code."""
    if vendor:
        return f"{int(vendor_code(exc, THIRDPARTY))} {vendor_message(exc, THIRDPARTY)}"
    return exc.detail
