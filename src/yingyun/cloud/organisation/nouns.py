"""What every noun of the organisation offers, and the pieces they share: paging, search, reading a body."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, Select, func, or_, select

from ...contract.codes import Code
from ...core.errors import Invalid, NotFound
from .scope import Actor

Item = dict[str, Any]
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


@dataclass(frozen=True)
class Page:
    """One page of a list, and how many the whole list holds."""

    items: list[Item]
    total: int

    def json(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total}


@dataclass(frozen=True)
class Query:
    """`?q=&limit=&offset=[&hospitalId=]`: a case-insensitive text the id or name contains, and the page's
    window (no `limit`: all of them, as the command line lists)."""

    q: str | None = None
    limit: int | None = DEFAULT_LIMIT
    offset: int = 0
    hospital_id: str | None = None  # `?hospitalId=`: only that hospital's (the nouns that belong to one)

    def __post_init__(self) -> None:
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:
            raise Invalid(f"limit must be 1-{MAX_LIMIT}", field="limit", code=Code.INVALID_FORMAT)
        if self.offset < 0:
            raise Invalid("offset must be 0 or more", field="offset", code=Code.INVALID_FORMAT)

    def matches(self, *texts: str | None, hospital_id: str | None = None) -> bool:
        if self.hospital_id is not None and hospital_id != self.hospital_id:
            return False
        return not self.q or any(self.q.lower() in t.lower() for t in texts if t)

    def window(self, items: Sequence[Item]) -> Page:
        """A page of a list already filtered in Python (the nouns whose rows are assembled from several tables)."""
        end = None if self.limit is None else self.offset + self.limit
        return Page(list(items[self.offset:end]), len(items))


ALL = Query(limit=None)


def searched(query: Query, *columns: ColumnElement[str]) -> list[ColumnElement[bool]]:
    return [or_(*(c.icontains(query.q, autoescape=True) for c in columns))] if query.q else []


def of_hospitals(stmt: Select[Any], hospital_id: ColumnElement[str], actor: Actor, query: Query) -> Select[Any]:
    """`stmt` narrowed to the rows of the hospitals the actor reaches (and to `?hospitalId=` when given)."""
    reach = actor.hospital_ids()
    if reach is not None:
        stmt = stmt.where(hospital_id.in_(sorted(reach)))
    if query.hospital_id is not None:
        stmt = stmt.where(hospital_id == query.hospital_id)
    return stmt


def page_of(conn: Connection, stmt: Select[Any], query: Query, shape: Callable[[Any], Item]) -> Page:
    """The rows of `stmt` (ordered) in the query's window, shaped, with the count of all of them."""
    total = conn.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    rows = conn.execute(stmt.limit(query.limit).offset(query.offset or None)).all()
    return Page([shape(r) for r in rows], total)


class Noun(Protocol):
    """One kind of object: `/api/v1/<path>` and `/api/v1/<path>/{key}`, and `yingyun admin <noun> …`."""

    path: str  # the API's plural ("device-types")
    key: str  # the JSON field that names one ("id", "appId", "aeTitle", "doctorId")

    def list(self, actor: Actor, query: Query) -> Page: ...

    def get(self, actor: Actor, key: str) -> Item: ...

    def create(self, actor: Actor, data: Mapping[str, Any]) -> Item: ...

    def update(self, actor: Actor, key: str, data: Mapping[str, Any]) -> Item: ...

    def remove(self, actor: Actor, key: str) -> None: ...


def save(noun: Noun, actor: Actor, key: str | None, data: Mapping[str, Any]) -> tuple[bool, Item]:
    """Create the object `key` names (True), or change it when it exists (False): the command line's `add`."""
    if key is not None:
        try:
            noun.get(actor, key)
        except NotFound:
            pass
        else:
            return False, noun.update(actor, key, data)
    return True, noun.create(actor, dict(data) | ({noun.key: key} if key is not None else {}))


def new_id() -> str:
    """An id for an object created without one (the console lets the platform choose)."""
    return secrets.token_hex(6)


class Body:
    """A JSON object sent to create or change something: each field read once with its type checked; what is
    left unread is refused by `done()`, so a misspelt field is an error rather than silently ignored."""

    def __init__(self, data: Any, subject: str, *, partial: bool) -> None:
        if not isinstance(data, Mapping):
            raise Invalid("the body must be a JSON object", subject=subject, code=Code.INVALID_FORMAT)
        self.data = dict(data)
        self.subject = subject
        self.partial = partial  # a PATCH: nothing is required
        self._read: set[str] = set()

    def has(self, name: str) -> bool:
        return name in self.data

    def _get(self, name: str, required: bool) -> Any:
        self._read.add(name)
        value = self.data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required and not self.partial:
                raise Invalid(f"{name} is required", subject=self.subject, field=name, code=Code.REQUIRED_EMPTY)
            if required and name in self.data:
                raise Invalid(f"{name} may not be empty", subject=self.subject, field=name,
                              code=Code.REQUIRED_EMPTY)
            return None
        return value

    def value(self, name: str) -> Any:
        """The field as it was sent (for a shape the readers below do not know)."""
        self._read.add(name)
        return self.data.get(name)

    def _wrong(self, name: str, kind: str) -> Invalid:
        return Invalid(f"{name} must be {kind}", subject=self.subject, field=name, code=Code.INVALID_FORMAT)

    def text(self, name: str, *, required: bool = False, max_len: int = 200) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str) or len(value.strip()) > max_len or not value.strip().isprintable():
            raise self._wrong(name, f"a text of at most {max_len} printable characters")
        return value.strip()

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(name, "a whole number")
        return value

    def flag(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self._wrong(name, "true or false")
        return value

    def texts(self, name: str) -> list[str] | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._wrong(name, "a list of texts")
        return list(dict.fromkeys(value))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise Invalid(f"unknown field(s) for a {self.subject}: {', '.join(unknown)}", subject=self.subject,
                          field=unknown[0], code=Code.INVALID_FORMAT)
