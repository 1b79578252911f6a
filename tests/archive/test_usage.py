"""`yingyun admin usage --month` (issue 18, item 7): per hospital, the month's studies, patient visits,
instances and bytes added, and what was held at its end; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from yingyun.cli.main import app
from yingyun.storage.schema import instances, studies

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SH).timestamp()


def study(conn, pk: int, hospital: str, created: str, *, patient: str = "P1", deleted: bool = False, **numbers: str):
    conn.execute(studies.insert(), {"pk": pk, "hospital_id": hospital, "study_id": f"S{pk}", "patient_id": patient,
                                    "details": json.dumps(numbers), "deleted": deleted, "created_at": at(created),
                                    "updated_at": at(created)})


def instance(conn, pk: int, hospital: str, received: str, size: int):
    conn.execute(instances.insert(), {"pk": pk, "hospital_id": hospital, "study_uid": "1.2", "series_uid": "1.2.3",
                                      "sop_uid": f"1.2.3.{pk}", "sop_class_uid": "1.2.840.10008.5.1.4.1.1.2",
                                      "transfer_syntax": "1.2.840.10008.1.2.1", "kind": "image", "blob_key": f"k{pk}",
                                      "size": size, "received_at": at(received)})


def test_usage_of_a_month_per_hospital(runtime, settings, tenant):
    runtime.tenancy.add_hospital(hospital_id="h2", name="第二医院", union_id="u1")
    with runtime.db.write() as conn:
        study(conn, 1, "h1", "2026-11-01 00:00:00", clinicNum="C1")       # first instant of November (Shanghai)
        study(conn, 2, "h1", "2026-11-15 10:00:00", clinicNum="C1")       # the same outpatient visit: one visit
        study(conn, 3, "h1", "2026-11-20 10:00:00", inpatientNum="I9")    # another visit
        study(conn, 4, "h1", "2026-11-21 10:00:00")                       # no visit number: a visit of its own
        study(conn, 5, "h1", "2026-11-30 23:59:59", patient="P2", clinicNum="C1")  # another patient's visit
        study(conn, 6, "h1", "2026-11-22 10:00:00", deleted=True, clinicNum="C7")   # deleted: not billed
        study(conn, 7, "h1", "2026-10-31 23:59:59", clinicNum="C8")       # October (in Shanghai)
        study(conn, 8, "h1", "2026-12-01 00:00:00", clinicNum="C9")       # December
        instance(conn, 1, "h1", "2026-10-10 10:00:00", 1000)               # held, not added
        instance(conn, 2, "h1", "2026-11-03 10:00:00", 200)
        instance(conn, 3, "h1", "2026-11-30 23:59:59", 30)
        instance(conn, 4, "h1", "2026-12-01 00:00:00", 4)                  # after the month: neither
        instance(conn, 5, "h2", "2026-11-05 10:00:00", 5)
    res = CliRunner().invoke(app, ["admin", "usage", "--month", "2026-11", "--json", "--data-dir",
                                   str(settings.data_dir), "--database-url", settings.database_url])
    assert res.exit_code == 0, res.output
    rows = {r["hospitalId"]: r for r in json.loads(res.stdout)}
    assert rows["h1"] == {"hospitalId": "h1", "month": "2026-11", "studies": 5, "visits": 4, "instancesAdded": 2,
                          "bytesAdded": 230, "instancesHeld": 3, "bytesHeld": 1230}
    assert rows["h2"] == {"hospitalId": "h2", "month": "2026-11", "studies": 0, "visits": 0, "instancesAdded": 1,
                          "bytesAdded": 5, "instancesHeld": 1, "bytesHeld": 5}
    only = CliRunner().invoke(app, ["admin", "usage", "--month", "2026-11", "--hospital", "h2", "--json",
                                    "--data-dir", str(settings.data_dir), "--database-url", settings.database_url])
    assert [r["hospitalId"] for r in json.loads(only.stdout)] == ["h2"]
    # The month's days in UTC: study 1 (2026-10-31T16:00Z) falls out, study 8 and instance 4 (2026-11-30T16:00Z) in.
    utc = CliRunner().invoke(app, ["admin", "usage", "--month", "2026-11", "--json", "--timezone", "UTC",
                                   "--data-dir", str(settings.data_dir), "--database-url", settings.database_url])
    h1 = {r["hospitalId"]: r for r in json.loads(utc.stdout)}["h1"]
    assert (h1["studies"], h1["visits"], h1["instancesAdded"], h1["bytesAdded"]) == (5, 5, 3, 234)


def test_a_month_that_is_not_one_is_refused(runtime, settings):
    res = CliRunner().invoke(app, ["admin", "usage", "--month", "2026-13", "--data-dir", str(settings.data_dir),
                                   "--database-url", settings.database_url])
    assert res.exit_code == 1
    assert "--month takes yyyy-MM, such as 2026-11, not '2026-13'" in res.stderr
