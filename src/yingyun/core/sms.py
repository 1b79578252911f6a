"""Sending verification codes by SMS: one small interface, several senders.

Guarantee of every `SmsSender.send`: when it returns, the carrier (or the
log, for trials) has accepted the message; on failure it raises `SmsError`
and the caller tells the visitor to try again. Senders never log the phone
number in clear (only `mask_phone`) and never log the message text except
the `log` sender, whose whole point is to put the code in the server log
for trials without a carrier.

* `LogSender` (`--sms-sender log`): writes the code and the masked phone
  number to the server log.
* `HttpSender` (`--sms-sender http --sms-url URL`): POSTs
  `{"phone": "...", "code": "123456", "purpose": "verify", "ttlSeconds": 300}`
  as JSON to the gateway URL; any 2xx is accepted.
* `FakeSender`: keeps messages in memory for tests (a fake, named as one:
  no carrier can run here).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import httpx

from .crypto import normalise_phone

log = logging.getLogger("yingyun.sms")


class SmsError(Exception):
    """The message could not be handed over. Never carries the phone number."""


def mask_phone(phone: str | None) -> str:
    """138****8000: enough for an operator to tell messages apart, no more."""
    digits = normalise_phone(phone)
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


class SmsSender(Protocol):
    def send(self, *, phone: str, code: str, ttl_s: int) -> None: ...


class LogSender:
    def send(self, *, phone: str, code: str, ttl_s: int) -> None:
        log.info("verification code %s for %s (valid %d s)", code, mask_phone(phone), ttl_s)


class HttpSender:
    def __init__(self, url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def send(self, *, phone: str, code: str, ttl_s: int) -> None:
        body = {"phone": normalise_phone(phone), "code": code, "purpose": "verify", "ttlSeconds": ttl_s}
        try:
            r = self._client.post(self.url, json=body)
        except httpx.HTTPError as e:
            log.warning("SMS gateway unreachable (%s) for %s", type(e).__name__, mask_phone(phone))
            raise SmsError("SMS gateway unreachable") from e
        if not 200 <= r.status_code < 300:
            log.warning("SMS gateway answered HTTP %d for %s", r.status_code, mask_phone(phone))
            raise SmsError(f"SMS gateway answered HTTP {r.status_code}")
        log.info("verification code sent to %s", mask_phone(phone))

    def close(self) -> None:
        self._client.close()


@dataclass
class SentMessage:
    phone: str
    code: str
    ttl_s: int


class FakeSender:
    """A fake carrier for tests: remembers what it was asked to send."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[SentMessage] = []
        self.fail = fail
        self._lock = threading.Lock()

    def send(self, *, phone: str, code: str, ttl_s: int) -> None:
        if self.fail:
            raise SmsError("fake carrier set to fail")
        with self._lock:
            self.sent.append(SentMessage(normalise_phone(phone), code, ttl_s))

    def last_code(self, phone: str | None = None) -> str | None:
        with self._lock:
            for m in reversed(self.sent):
                if phone is None or m.phone == normalise_phone(phone):
                    return m.code
        return None


def make_sender(kind: str, url: str | None = None) -> SmsSender:
    if kind == "log":
        return LogSender()
    if kind == "http":
        if not url:
            raise ValueError("--sms-sender http needs --sms-url")
        return HttpSender(url)
    raise ValueError(f"unknown SMS sender {kind!r} (log or http)")
