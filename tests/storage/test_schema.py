"""The migrations build exactly the schema `storage/schema/` declares, on both databases.

Alembic's autogenerate compares the migrated database with the declared
metadata (warehouse's `bin/db-check`): a table, column, type, index or
constraint that one has and the other has not is drift, and drift means a
deployment's database is not what the code was written against.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import select, update

import yingyun
from yingyun.dicomnet.status import Status
from yingyun.storage import schema as s

from ..support.dicom_peers import dataset_bytes, make_instance


def test_the_migrations_build_the_declared_schema(runtime) -> None:
    assert runtime.db.schema_drift() == []


def test_tables_are_declared_only_in_the_schema_package() -> None:
    # A table declared beside its domain is one Alembic misses unless that module happens to be imported.
    src = Path(yingyun.__file__).parent
    allowed = (src / "storage" / "schema", src / "storage" / "migrations")
    outside = [str(p.relative_to(src)) for p in src.rglob("*.py")
               if not any(p.is_relative_to(a) for a in allowed)
               and re.search(r"\b(Table|Index)\(", p.read_text(encoding="utf-8"))]
    assert outside == []
    assert {"jobs", "dicomweb_tokens", "consultations", "partner_rate_windows", "deployment",
            "legal_holds", "blob_digests"} <= set(s.metadata.tables)


def test_sizes_of_2_gib_and_more_are_kept(runtime, tenant, tmp_path) -> None:
    # STOW takes instances up to 4 GiB and a study adds its instances' sizes: both need 64 bits
    # (instances.size and dicom_studies.size_bytes were 32-bit INTEGER on PostgreSQL until 0010).
    make_instance(tmp_path / "a.dcm")
    result = runtime.instances.store(hospital_id=tenant["hospital"], data=dataset_bytes(tmp_path / "a.dcm"),
                                     transfer_syntax_uid=ExplicitVRLittleEndian)
    assert result.status == Status.SUCCESS, result
    big = 3 * 2**30
    with runtime.db.write() as conn:
        conn.execute(update(s.instances).values(size=big))
        conn.execute(update(s.dicom_studies).values(size_bytes=s.dicom_studies.c.size_bytes + 2 * big))
    with runtime.db.read() as conn:
        assert conn.execute(select(s.instances.c.size)).scalar_one() == big
        assert conn.execute(select(s.dicom_studies.c.size_bytes)).scalar_one() > 2 * big
