"""Reading turnaround read from the index (issue 15 item 8), on SQLite and PostgreSQL: the reports joined to
their studies' stable times, the period, the centres in scope."""

from __future__ import annotations

from sqlalchemy import insert

from yingyun.cloud.stats.turnaround import Turnaround, read_turnaround
from yingyun.storage import schema as s

from ...support.reading import reading_reports, report_row

T = 1_767_225_600.0
DAY = 86400.0


def test_the_waits_are_from_the_studys_stable_time(runtime) -> None:
    table = reading_reports(runtime.db.writer)
    # (centre, hospital, doctor, minutes to submitted, minutes to final, returned, amended); stable at T.
    made = [("h1", "h2", "d1", 10, 60, 1, 0), ("h1", "h2", "d1", 20, 120, 0, 0), ("h1", "h3", "d1", 30, None, 0, 0),
            ("h1", "h3", "d1", 40, None, 0, 2), ("h1", "h2", "d2", 5, 8, 2, 0), ("h9", "h3", "d9", 90, 95, 0, 0)]
    with runtime.db.write() as conn:
        conn.execute(insert(s.users).values(username="d1", name="医生一", created_at=T, updated_at=T))
        for n, (centre, hospital, doctor, sub, fin, ret, amd) in enumerate(made):
            uid = f"1.2.3.{n}"
            conn.execute(insert(s.dicom_studies).values(hospital_id=hospital, study_uid=uid, first_instance_at=T - 60,
                                                        last_instance_at=T - 30, stable=True, stable_at=T))
            conn.execute(insert(table).values(report_row(
                hospital_id=hospital, study_uid=uid, centre_id=centre, number=f"R{n}", doctor=doctor,
                submitted=T + sub * 60, final=None if fin is None else T + fin * 60, returned=ret, amended=amd)))
        # Outside the period (submitted the day before), never submitted, and one with no study indexed.
        conn.execute(insert(table).values(report_row(hospital_id="h2", study_uid="9.1", centre_id="h1", number="X1",
                                                     doctor="d1", submitted=T - DAY, final=None)))
        conn.execute(insert(table).values(report_row(hospital_id="h2", study_uid="9.2", centre_id="h1", number="X2",
                                                     doctor="d1", submitted=None, final=None)))
        conn.execute(insert(table).values(report_row(hospital_id="h2", study_uid="9.3", centre_id="h1", number="X3",
                                                     doctor="d3", submitted=T + 600, final=None)))

    with runtime.db.read() as conn:
        every = read_turnaround(conn, since=T, until=T + DAY, centres=None)
        mine = read_turnaround(conn, since=T, until=T + DAY, centres=frozenset({"h1"}))
        none = read_turnaround(conn, since=T, until=T + DAY, centres=frozenset())
    h1, h9 = every["centres"]
    assert h1 == {"centreId": "h1", "studiesRead": 6, "final": 3,
                  "toSubmitted": {"medianMinutes": 20.0, "p90Minutes": 36.0},  # 5 10 20 30 40 (9.3: no study)
                  "toFinal": {"medianMinutes": 60.0, "p90Minutes": 108.0}, "returned": 3, "amended": 2}
    assert h9["studiesRead"] == 1 and h9["toFinal"]["medianMinutes"] == 95.0
    d1, d2, d3, d9 = every["doctors"]
    assert (d1["doctorId"], d2["doctorName"], d3["studiesRead"], d9["centreId"]) == ("d1", None, 1, "h9")
    assert d1["doctorName"] == "医生一" and d1["studiesRead"] == 4
    assert d1["toSubmitted"] == {"medianMinutes": 25.0, "p90Minutes": 37.0}
    assert d1["toFinal"] == {"medianMinutes": 90.0, "p90Minutes": 114.0}
    assert mine["centres"] == [h1] and {d["centreId"] for d in mine["doctors"]} == {"h1"}
    assert none == {"centres": [], "doctors": []}


def test_the_same_question_within_a_minute_is_answered_from_memory(runtime) -> None:
    table = reading_reports(runtime.db.writer)
    now = [T + DAY]
    memo = Turnaround(runtime.db, clock=lambda: now[0], ttl_s=60.0)

    def add(n: int) -> None:
        with runtime.db.write() as conn:
            conn.execute(insert(table).values(report_row(hospital_id="h2", study_uid=f"5.{n}", centre_id="h1",
                                                         number=f"M{n}", doctor="d1", submitted=T + n, final=None)))

    def read() -> int:
        return memo.figures(since=T, until=T + DAY, centres=None)["centres"][0]["studiesRead"]

    add(1)
    assert read() == 1
    add(2)
    now[0] += 59
    assert read() == 1  # a minute has not passed
    now[0] += 2
    assert read() == 2
    assert memo.figures(since=T, until=T + DAY, centres=frozenset({"h9"}))["centres"] == []  # its own question
