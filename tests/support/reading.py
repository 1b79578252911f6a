"""The reading core's `reading_reports` table for tests and benchmarks of what reads it (the turnaround).

The table is the reading core's (storage/schema/reading.py). Where this tree has it, it is used as it is;
until then a stand-in with the columns the seam pins (and the reading core's NOT NULL ones) is created in
the test's database, so the same rows are written either way.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Engine, Float, Index, Integer, MetaData, String, Table, Text

from yingyun.storage import schema as s


def reading_reports(engine: Engine) -> Table:
    real = s.metadata.tables.get("reading_reports")
    if real is not None:
        return real
    stand_in = Table(
        "reading_reports", MetaData(),
        Column("pk", Integer, primary_key=True, autoincrement=True),
        Column("study_uid", String(64), nullable=False), Column("hospital_id", String(64), nullable=False),
        Column("centre_id", String(64), nullable=False), Column("report_number", String(128), nullable=False),
        Column("state", String(16), nullable=False), Column("version", Integer, nullable=False, default=0),
        Column("critical", Boolean, nullable=False, default=False),
        Column("report_doctor_id", String(64)), Column("report_doctor", Text),
        Column("first_submitted_at", Float), Column("first_final_at", Float),
        Column("returned_count", Integer, nullable=False, default=0),
        Column("amended_count", Integer, nullable=False, default=0),
        Column("created_at", Float, nullable=False), Column("updated_at", Float, nullable=False),
        # what storage/schema/templates.py declares on the real table once it is merged
        Index("ix_reading_reports_turnaround", "first_submitted_at", "centre_id", "report_doctor_id",
              "first_final_at", "returned_count", "amended_count", "hospital_id", "study_uid"),
    )
    stand_in.create(engine, checkfirst=True)
    return stand_in


def report_row(*, hospital_id: str, study_uid: str, centre_id: str, number: str, doctor: str | None,
               submitted: float | None, final: float | None, returned: int = 0, amended: int = 0) -> dict[str, object]:
    """One row of `reading_reports` as the reading core leaves a report first submitted at `submitted`."""
    state = "final" if final is not None else "submitted" if submitted is not None else "drafting"
    return {"study_uid": study_uid, "hospital_id": hospital_id, "centre_id": centre_id, "report_number": number,
            "state": state, "version": 1 + returned + amended, "critical": False, "report_doctor_id": doctor,
            "first_submitted_at": submitted,
            "first_final_at": final, "returned_count": returned, "amended_count": amended,
            "created_at": submitted or 0.0, "updated_at": final or submitted or 0.0}
