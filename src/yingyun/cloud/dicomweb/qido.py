"""QIDO-RS (PS3.18 10.6): search studies, series and instances in the index.

Matching is C-FIND's (`archive.query`): single values, `*`/`?` wildcards,
date/time ranges, UID lists, person names across their component groups
(so `王*` finds `Wang^XiaoDong=王^小東`), case-insensitively. What SQL can
decide exactly is pushed down and indexed (UID lists, IDs, date ranges,
modalities, numbers); person names get a SQL pre-filter that can only
over-select, and every candidate row is then checked by the same matcher
C-FIND uses, so the two services always agree. Deleted studies never
match. Results come newest first (by arrival), `offset`/`limit` applied
after matching.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, func, literal, literal_column, or_, select

from ...archive.query import matches as cfind_matches
from ...core.errors import Invalid
from ...storage import schema as s
from .dicomjson import keyword_of, person_name, tag_of
from .wado import resource_url

MAX_RESULTS = 1000

d, se, i, st = s.dicom_studies, s.series, s.instances, s.studies

# keyword -> (level, column). Levels: study, series, instance.
STUDY_ATTRS = {
    "StudyInstanceUID": d.c.study_uid, "PatientName": d.c.patient_name_raw, "PatientID": d.c.patient_id,
    "PatientBirthDate": d.c.patient_birth_date, "PatientSex": d.c.patient_sex, "StudyDate": d.c.study_date,
    "StudyTime": d.c.study_time, "AccessionNumber": d.c.accession_number,
    "StudyDescription": d.c.study_description, "ReferringPhysicianName": d.c.referring_physician,
    "ModalitiesInStudy": d.c.modalities,
}
SERIES_ATTRS = {
    "SeriesInstanceUID": se.c.series_uid, "Modality": se.c.modality, "SeriesNumber": se.c.series_number,
    "SeriesDescription": se.c.description, "BodyPartExamined": se.c.body_part, "SeriesDate": se.c.series_date,
    "SeriesTime": se.c.series_time,
}
INSTANCE_ATTRS = {
    "SOPInstanceUID": i.c.sop_uid, "SOPClassUID": i.c.sop_class_uid, "InstanceNumber": i.c.instance_number,
    "NumberOfFrames": i.c.number_of_frames, "Rows": i.c.rows, "Columns": i.c.columns,
}
LEVEL_ATTRS = {"study": STUDY_ATTRS, "series": SERIES_ATTRS, "instance": INSTANCE_ATTRS}
COUNTS = {"study": ("NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"),
          "series": ("NumberOfSeriesRelatedInstances",), "instance": ()}
EXTRA_RETURN = {"study": ("InstanceAvailability", "RetrieveURL", "SpecificCharacterSet"),
                "series": ("InstanceAvailability", "RetrieveURL", "SpecificCharacterSet"),
                "instance": ("InstanceAvailability", "RetrieveURL", "SpecificCharacterSet",
                             "AvailableTransferSyntaxUID")}
# Returned by default at each level (PS3.18 Tables 10.6.3-3..5, what the index holds).
DEFAULT_RETURN = {
    "study": ["SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability",
              "ModalitiesInStudy", "ReferringPhysicianName", "RetrieveURL", "PatientName", "PatientID",
              "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDescription",
              "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"],
    "series": ["SpecificCharacterSet", "Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
               "NumberOfSeriesRelatedInstances", "InstanceAvailability", "RetrieveURL", "StudyInstanceUID",
               "BodyPartExamined", "SeriesDate", "SeriesTime"],
    "instance": ["SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "RetrieveURL",
                 "InstanceNumber", "Rows", "Columns", "NumberOfFrames", "StudyInstanceUID", "SeriesInstanceUID",
                 "AvailableTransferSyntaxUID"],
}
LEVELS = ("study", "series", "instance")
UID_KEYS = {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"}
LIST_KEYS = UID_KEYS | {"ModalitiesInStudy", "Modality"}
NUMBER_KEYS = {"SeriesNumber", "InstanceNumber", "NumberOfFrames", "Rows", "Columns"}
PARAMS = {"limit", "offset", "includefield", "fuzzymatching", "hospitalid", "accept", "charset"}


@dataclass
class Query:
    level: str
    keys: dict[str, str] = field(default_factory=dict)  # keyword -> DICOM matching pattern
    include: set[str] = field(default_factory=set)
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    limit_capped: bool = False  # no limit asked for, or more than MAX_RESULTS: the server's cap applies
    warnings: list[str] = field(default_factory=list)
    study_uid: str | None = None  # from the path
    series_uid: str | None = None


def _levels_for(level: str) -> tuple[str, ...]:
    return LEVELS[: LEVELS.index(level) + 1]


def parse(level: str, params: list[tuple[str, str]], *, study_uid: str | None = None,
          series_uid: str | None = None) -> Query:
    """A Query from the request's query parameters; Invalid for anything malformed."""
    q = Query(level=level, study_uid=study_uid, series_uid=series_uid)
    allowed = {kw for lv in _levels_for(level) for kw in LEVEL_ATTRS[lv]}
    # Study attributes may be given with series/instance searches; series
    # attributes with instance searches (PS3.18 10.6.1.2.3 relational queries).
    unsupported: list[str] = []
    unnamed = 0  # ignored keys whose names are not attribute paths
    for name, value in params:
        low = name.lower()
        if low in PARAMS:
            if low == "limit":
                q.limit = _nonneg_int(name, value)
            elif low == "offset":
                q.offset = _nonneg_int(name, value)
            elif low == "includefield":
                for part in (p.strip() for p in value.split(",")):
                    if not part:
                        continue
                    if part.lower() == "all":
                        q.include_all = True
                        continue
                    kw = keyword_of(part)
                    if kw is None:
                        raise Invalid(f"includefield: unknown attribute {part!r}")
                    q.include.add(kw)
            elif low == "fuzzymatching":
                if value.strip().lower() not in ("true", "false"):
                    raise Invalid("fuzzymatching must be true or false")
                if value.strip().lower() == "true":
                    q.warnings.append("fuzzy matching is not supported; only literal matching has been performed")
            continue
        if "." in name:
            # Sequence matching (e.g. 00081032.00080100): not indexed.
            path = _attribute_path(name)
            if path is None:
                unnamed += 1
            else:
                unsupported.append(path)
            continue
        kw = keyword_of(name)
        if kw is None:
            raise Invalid(f"unknown query parameter or attribute {name!r}")
        if kw not in allowed:
            unsupported.append(kw)
            continue
        value = value.strip()
        if kw in LIST_KEYS:
            value = "\\".join(v.strip() for v in re.split(r"[,\\]", value) if v.strip())
        if kw in q.keys and value and q.keys[kw]:
            if kw in LIST_KEYS:
                value = q.keys[kw] + "\\" + value
            else:
                raise Invalid(f"{kw} given twice")
        q.keys[kw] = value
    if unnamed:
        unsupported.append(f"{unnamed} sequence key(s) naming no known attribute")
    if unsupported:
        q.warnings.append("the following attributes are not supported as query keys at this level and were "
                          f"ignored: {', '.join(unsupported)}")
    if study_uid is not None:
        q.keys["StudyInstanceUID"] = _narrow(q.keys.get("StudyInstanceUID", ""), study_uid)
    if series_uid is not None:
        q.keys["SeriesInstanceUID"] = _narrow(q.keys.get("SeriesInstanceUID", ""), series_uid)
    if q.limit is None or q.limit > MAX_RESULTS:
        q.limit_capped = True
        q.limit = MAX_RESULTS
    return q


def _narrow(existing: str, path_uid: str) -> str:
    if not existing:
        return path_uid
    return path_uid if path_uid in existing.split("\\") else "\x00no-match"


# offset and number keys as the index can compare them (INTEGER columns; OFFSET
# is a 64-bit integer on both databases, and nobody pages past 2^31 results).
INT_MAX = 2**31 - 1
_DIGITS = re.compile(r"\d{1,10}", re.ASCII)


def _nonneg_int(name: str, value: str) -> int:
    text = value.strip()
    n = int(text) if _DIGITS.fullmatch(text) else -1
    if not 0 <= n <= INT_MAX:
        raise Invalid(f"{name} must be an integer from 0 to {INT_MAX}, not {text[:32]!r}")
    return n


def _attribute_path(name: str) -> str | None:
    """A sequence-matching key (00081032.00080100) if every part names an attribute
    (8 hex digits or a keyword): what a Warning may echo. A name made of anything
    else is not repeated into a response header."""
    parts = [part.strip() for part in name.split(".")]
    return ".".join(parts) if all(keyword_of(part) for part in parts) else None


# --------------------------------------------------------------------------
# SQL push-down


def _has_wild(p: str) -> bool:
    return "*" in p or "?" in p


def _like(pattern: str) -> str:
    out = []
    for c in pattern:
        if c in "%_!":
            out.append("!" + c)
        elif c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        else:
            out.append(c)
    return "".join(out)


_DATE_RANGE = re.compile(r"(\d{8})?-(\d{8})?")


def _name_chunks(pattern: str) -> list[str]:
    """Literal pieces every matching name must contain (after case folding,
    with '^' and spaces removed): the SQL pre-filter for person names."""
    out = []
    for part in re.split(r"[*?^ =]+", pattern):
        if not part:
            continue
        # Only characters whose lower-casing SQL does the same way as Python's
        # casefold (ASCII, or characters without case such as CJK).
        if all(c.isascii() or (c.lower() == c.upper() == c.casefold() == c) for c in part):
            out.append(part.lower())
    return out


_EMPTY: ColumnElement[Any]
_CARET: ColumnElement[Any]
_SPACE: ColumnElement[Any]
_EQ: ColumnElement[Any]
_EMPTY, _CARET, _SPACE, _EQ = (literal_column(x) for x in ("''", "'^'", "' '", "'='"))


def _folded(col: Any) -> ColumnElement[Any]:
    """lower(name) without '^' and spaces; spelled with SQL literals so that
    PostgreSQL matches it to the expression indexes of migration 0003."""
    return func.replace(func.replace(func.lower(func.coalesce(col, _EMPTY)), _CARET, _EMPTY), _SPACE, _EMPTY)


def _group(folded: ColumnElement[Any], n: int) -> ColumnElement[Any]:
    return folded if n == 1 else func.split_part(folded, _EQ, literal_column(str(n)))


def _name_prefix(pattern: str) -> str | None:
    """The literal head of a single-group name pattern, if it can be pushed down."""
    if "=" in pattern:
        return None
    head = re.split(r"[*?]", pattern, maxsplit=1)[0].replace("^", "").replace(" ", "")
    caseless = all(c.isascii() or (c.lower() == c.upper() == c.casefold() == c) for c in head)
    if not head or any(c in head for c in "%_\\'") or not caseless:
        return None
    return head.lower()


def _conditions(q: Query, dialect: str) -> tuple[list[ColumnElement[bool]], bool]:
    """SQL conditions for the query keys, and whether they decide the match exactly."""
    conds: list[ColumnElement[bool]] = []
    exact = True
    columns = {kw: col for lv in _levels_for(q.level) for kw, col in LEVEL_ATTRS[lv].items()}
    for kw, pattern in q.keys.items():
        if pattern in ("", "*"):
            continue
        col = columns[kw]
        if kw in UID_KEYS:
            if _has_wild(pattern):
                exact = False
            else:
                conds.append(col.in_(pattern.split("\\")))
        elif kw in NUMBER_KEYS:
            if _DIGITS.fullmatch(pattern) and int(pattern) <= INT_MAX:
                conds.append(col == int(pattern))
            elif pattern.isascii() and pattern.isdigit():
                conds.append(literal(False))  # more than any stored number
            else:
                exact = False
        elif kw in ("StudyDate", "SeriesDate", "PatientBirthDate"):
            m = _DATE_RANGE.fullmatch(pattern)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    conds.append(col >= m.group(1))
                if m.group(2):
                    conds.append(col <= m.group(2))
            elif len(pattern) == 8 and pattern.isdigit():
                conds.append(col == pattern)
            else:
                exact = False
        elif kw == "ModalitiesInStudy":
            wanted = pattern.split("\\")
            if any(_has_wild(w) for w in wanted):
                exact = False
                continue
            # On the plain column (not an expression of it), so that the
            # planner's statistics on `modalities` estimate the selectivity
            # and pick the index-ordered plan that stops after `limit` rows.
            alts = []
            for w in wanted:
                e = _like(w)
                alts += [col == w, col.like(f"{e}\\%", escape="!"), col.like(f"%\\{e}", escape="!"),
                         col.like(f"%\\{e}\\%", escape="!")]
            conds.append(or_(*alts))
        elif kw == "Modality":
            wanted = pattern.split("\\")
            if any(_has_wild(w) for w in wanted):
                exact = False
            else:
                conds.append(col.in_(wanted))
        elif kw in ("PatientName", "ReferringPhysicianName"):
            exact = False
            folded = _folded(col)
            for chunk in _name_chunks(pattern):
                conds.append(folded.like(f"%{_like(chunk)}%", escape="!"))
            prefix = _name_prefix(pattern)
            if prefix and dialect == "postgresql" and kw == "PatientName":
                # Indexed (migration 0003): a name matches only if one of its
                # component groups, folded, starts with the pattern's literal head.
                # Rendered inline, without ESCAPE, so that the planner sees a
                # constant prefix (and can use the index) even for a prepared statement.
                head = literal(prefix + "%", literal_execute=True)
                conds.append(or_(*(_group(folded, n).like(head) for n in (1, 2, 3))))
        elif kw in ("StudyTime", "SeriesTime"):
            exact = False
        elif _has_wild(pattern):
            # LIKE is case-insensitive on SQLite but not in DICOM matching.
            conds.append(col.like(_like(pattern), escape="!"))
            if dialect != "postgresql":
                exact = False
        else:
            conds.append(col == pattern)
    return conds, exact


def _visible(scope: frozenset[str] | None) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [or_(st.c.deleted.is_(None), st.c.deleted.is_(False))]
    if scope is not None:
        conds.append(d.c.hospital_id.in_(sorted(scope)) if scope else literal(False))
    return conds


def _statement(q: Query, scope: frozenset[str] | None, conds: list[ColumnElement[bool]]) -> Select[Any]:
    total = (d.c.n_images + d.c.n_sr + d.c.n_pdf + d.c.n_documents).label("n_instances_total")
    if q.level == "study":
        cols: list[Any] = [d, total]
        frm = d.outerjoin(st, st.c.pk == d.c.ris_study_pk)
        order: list[Any] = [d.c.pk.desc()]
    elif q.level == "series":
        cols = [d, total, se.c.series_uid, se.c.modality, se.c.series_number, se.c.description, se.c.body_part,
                se.c.series_date, se.c.series_time, se.c.n_instances, se.c.pk.label("series_pk")]
        frm = se.join(d, and_(d.c.hospital_id == se.c.hospital_id, d.c.study_uid == se.c.study_uid)) \
                .outerjoin(st, st.c.pk == d.c.ris_study_pk)
        order = [se.c.series_number, se.c.pk] if q.study_uid else [se.c.pk.desc()]
    else:
        cols = [d, total, se.c.series_uid, se.c.modality, se.c.series_number, se.c.description, se.c.body_part,
                se.c.series_date, se.c.series_time, se.c.n_instances, i.c.sop_uid, i.c.sop_class_uid,
                i.c.instance_number, i.c.number_of_frames, i.c.rows, i.c.columns, i.c.transfer_syntax,
                i.c.pk.label("instance_pk")]
        frm = i.join(se, and_(se.c.hospital_id == i.c.hospital_id, se.c.series_uid == i.c.series_uid)) \
               .join(d, and_(d.c.hospital_id == i.c.hospital_id, d.c.study_uid == i.c.study_uid)) \
               .outerjoin(st, st.c.pk == d.c.ris_study_pk)
        order = [se.c.series_number, se.c.pk, i.c.instance_number, i.c.pk] if q.study_uid else [i.c.pk.desc()]
    return select(*cols).select_from(frm).where(*_visible(scope), *conds).order_by(*order)


def _row_value(row: Row[Any], kw: str) -> Any:
    if kw == "NumberOfStudyRelatedSeries":
        return row.n_series
    if kw == "NumberOfStudyRelatedInstances":
        return row.n_instances_total
    if kw == "NumberOfSeriesRelatedInstances":
        return row.n_instances
    if kw == "AvailableTransferSyntaxUID":
        return row.transfer_syntax
    for lv in LEVELS:
        col = LEVEL_ATTRS[lv].get(kw)
        if col is not None:
            return getattr(row, col.name)
    return None


def _matches_row(q: Query, row: Row[Any]) -> bool:
    for kw, pattern in q.keys.items():
        if pattern in ("", "*"):
            continue
        value = _row_value(row, kw)
        if not cfind_matches(kw, pattern, value):
            return False
    return True


def search(conn: Connection, q: Query, scope: frozenset[str] | None) -> tuple[Sequence[Row[Any]], bool]:
    """Matching rows after offset, at most `limit`, and whether more matched.

    When SQL decides the match exactly, one statement with OFFSET/LIMIT.
    Otherwise candidates are fetched in growing batches (one round trip
    each, usually one in all) and checked with the C-FIND matcher."""
    conds, exact = _conditions(q, conn.dialect.name)
    stmt = _statement(q, scope, conds)
    limit = MAX_RESULTS if q.limit is None else q.limit  # parse() always sets it
    if exact:
        rows = conn.execute(stmt.offset(q.offset).limit(limit + 1)).all()
        return rows[:limit], len(rows) > limit
    want = q.offset + limit
    out: list[Row[Any]] = []
    seen, fetched = 0, 0
    # The SQL pre-filter is nearly exact, so the first batch is what the page
    # needs (a small LIMIT lets the planner walk the index in order and stop).
    batch = want + 1 + 16
    while True:
        rows = conn.execute(stmt.offset(fetched).limit(batch)).all()
        fetched += len(rows)
        for row in rows:
            if not _matches_row(q, row):
                continue
            seen += 1
            if seen > want:
                return out, True
            if seen > q.offset:
                out.append(row)
        if len(rows) < batch:
            return out, False
        batch = min(batch * 4, 20000)


def _getter(kw: str, level: str, base_url: str) -> Callable[[Row[Any]], Any]:
    """A function row -> index value for one returned attribute."""
    if kw == "SpecificCharacterSet":
        return lambda row: "ISO_IR 192"
    if kw == "InstanceAvailability":
        return lambda row: "ONLINE"
    if kw == "RetrieveURL":
        if level == "study":
            return lambda row: resource_url(base_url, row.study_uid)
        if level == "series":
            return lambda row: resource_url(base_url, row.study_uid, row.series_uid)
        return lambda row: resource_url(base_url, row.study_uid, row.series_uid, row.sop_uid)
    if kw == "ModalitiesInStudy":
        return lambda row: [m for m in (row.modalities or "").split("\\") if m]
    return lambda row: _row_value(row, kw)


def render(q: Query, rows: Sequence[Row[Any]], base_url: str) -> list[dict[str, Any]]:
    level = q.level
    if q.include_all:
        wanted = [kw for lv in _levels_for(level) for kw in LEVEL_ATTRS[lv]]
        wanted += [c for lv in _levels_for(level) for c in COUNTS[lv]] + list(EXTRA_RETURN[level])
        if level != "study":
            wanted += ["NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"]
    else:
        wanted = list(DEFAULT_RETURN[level])
        wanted += [kw for kw in q.keys if kw not in wanted]
        wanted += [kw for kw in q.include if kw not in wanted]
    # Only what this level (and the levels above it) holds: a series attribute
    # asked for in a study search has no single value and is left out.
    levels = _levels_for(level)
    known = ({kw for lv in levels for kw in LEVEL_ATTRS[lv]} | {c for lv in levels for c in COUNTS[lv]}
             | set(EXTRA_RETURN[level]) | set(COUNTS["study"]))
    plan = []
    for kw in dict.fromkeys(w for w in wanted if w in known):
        tag, vr = tag_of(kw)
        kind = "pn" if vr == "PN" else "num" if vr in ("IS", "US", "UL", "SS", "SL") else "str"
        plan.append((tag, vr, kind, _getter(kw, level, base_url)))
    plan.sort()
    out = []
    for row in rows:
        item: dict[str, dict[str, Any]] = {}
        for tag, vr, kind, get in plan:
            value = get(row)
            if value is None or value == "" or value == []:
                item[tag] = {"vr": vr}
            elif kind == "str":
                item[tag] = {"vr": vr, "Value": value if isinstance(value, list) else [value]}
            elif kind == "num":
                try:
                    item[tag] = {"vr": vr, "Value": [int(value)]}
                except (TypeError, ValueError):
                    item[tag] = {"vr": vr}
            else:
                item[tag] = {"vr": vr, "Value": [person_name(str(value)) or {}]}
        out.append(item)
    return out
