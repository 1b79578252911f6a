"""The response envelope `{"code", "message", "data"}` (contract §1.2)."""

from __future__ import annotations

from typing import Any

from .codes import Code


class ContractError(Exception):
    """A failure the vendor's clients understand: a code plus what was wrong.

    `detail` completes the vendor's default message so that the caller learns
    precisely which field or limit was at fault.
    """

    def __init__(self, code: Code, detail: str = "") -> None:
        super().__init__(f"{int(code)} {detail}".strip())
        self.code = code
        self.detail = detail

    @property
    def message(self) -> str:
        return message_for(self.code, self.detail)


def message_for(code: Code, detail: str = "") -> str:
    return f"{code.zh}: {detail}" if detail else code.zh


def envelope(code: Code = Code.SUCCESS, detail: str = "", data: Any = None, *,
             with_data: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"code": int(code), "message": message_for(code, detail)}
    if data is not None or with_data:
        body["data"] = data
    return body


def ok(data: Any = None) -> dict[str, Any]:
    return envelope(Code.SUCCESS, data=data)


def error(err: ContractError) -> dict[str, Any]:
    return envelope(err.code, err.detail)
