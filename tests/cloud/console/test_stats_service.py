"""The statistics match what was sent, live for today and from the rollup once the day has closed."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import pytest
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import func, select

from yingyun.cloud.stats.service import StatsService
from yingyun.core.errors import Invalid
from yingyun.core.times import Zone
from yingyun.dicomnet.status import Status
from yingyun.storage import schema as s

from ...support.dicom_peers import dataset_bytes, make_instance

STUDY = {"patientId": "P1", "patientName": "张三", "patientSex": "M", "studyId": "S1", "accessNumber": "A1",
         "modality": "CT", "studyDate": "2026-11-20 09:30:00", "studyDesc": "胸部CT平扫"}
REPORT = {"reportNumber": "R1", "studyId": "S1", "accessNumber": "S1", "imageDescription": "双肺纹理清晰。",
          "conclusion": "未见异常。", "reportDoctor": "李医生", "reportTime": "2026-11-20 10:00:00"}


def _send(ris, runtime, tmp_path) -> None:
    for study_id, patient, modality in (("S1", "P1", "CT"), ("S2", "P1", "MR"), ("S3", "P2", "CT")):
        assert ris.post("/ris/study/add", dict(STUDY, studyId=study_id, accessNumber=study_id, patientId=patient,
                                               modality=modality))["code"] == 0
    assert ris.post("/ris/report/add", REPORT)["code"] == 0
    series = "1.2.826.0.1.3680043.10.1.7"
    for n in range(3):
        make_instance(tmp_path / f"{n}.dcm", index=n, study_uid="1.2.826.0.1.3680043.10.1.6", series_uid=series)
        result = runtime.instances.store(hospital_id="h1", data=dataset_bytes(tmp_path / f"{n}.dcm"),
                                         transfer_syntax_uid=ExplicitVRLittleEndian)
        assert result.status == Status.SUCCESS, result


def _service(runtime, *, clock=time.time) -> StatsService:
    return StatsService(runtime.db, zone=Zone(runtime.settings.timezone), data_dir=runtime.settings.data_dir,
                        clock=clock)


def test_today_counts_what_was_sent(ris, runtime, tmp_path) -> None:
    _send(ris, runtime, tmp_path)
    today = datetime.now(Zone(runtime.settings.timezone).tz).date()
    with runtime.db.read() as conn:
        size = conn.execute(select(func.sum(s.instances.c.size))).scalar_one()
    [row] = _service(runtime).daily(first=today - timedelta(days=2), last=today, hospitals=None)
    assert row["date"] == today.isoformat() and row["hospitalId"] == "h1"
    assert {k: row[k] for k in ("studies", "studiesWithImages", "instances", "bytes", "reports", "patientVisits")} \
        == {"studies": 3, "studiesWithImages": 1, "instances": 3, "bytes": size, "reports": 1, "patientVisits": 2}
    assert row["byModality"]["CT"] == {"studies": 2, "studiesWithImages": 1, "instances": 3, "bytes": size,
                                       "reports": 1, "patientVisits": 2}
    assert row["byModality"]["MR"]["studies"] == 1 and row["byModality"]["MR"]["patientVisits"] == 1
    # Another hospital's caller sees nothing of h1; the two closed (empty) days are stored, today is not.
    assert _service(runtime).daily(first=today, last=today, hospitals=frozenset({"h2"})) == []
    with runtime.db.read() as conn:
        assert sorted(conn.execute(select(s.stats_days.c.day)).scalars()) \
            == [(today - timedelta(days=n)).isoformat() for n in (2, 1)]
        assert conn.execute(select(func.count()).select_from(s.stats_daily)).scalar_one() == 0


def test_a_closed_day_is_summed_once_and_read_back_the_same(ris, runtime, tmp_path) -> None:
    _send(ris, runtime, tmp_path)
    today = datetime.now(Zone(runtime.settings.timezone).tz).date()
    live = _service(runtime).daily(first=today, last=today, hospitals=None)
    later = _service(runtime, clock=lambda: time.time() + 2 * 86400)  # today has closed for this one
    assert later.daily(first=today, last=today, hospitals=None) == live
    with runtime.db.read() as conn:
        assert conn.execute(select(s.stats_days.c.day)).scalars().all() == [today.isoformat()]
        stored = conn.execute(select(func.count()).select_from(s.stats_daily)).scalar_one()
    assert stored == 3  # h1 as a whole, CT, MR
    # Read from the rollup (scoped) it is the same again, and nothing is summed twice.
    assert later.daily(first=today, last=today, hospitals=frozenset({"h1"})) == live
    assert later.daily(first=today, last=today, hospitals=frozenset({"h2"})) == []
    # Another process (a fresh service) reads the stored rows: the same again.
    fresh = _service(runtime, clock=lambda: time.time() + 2 * 86400)
    assert fresh.daily(first=today, last=today, hospitals=frozenset({"h1"})) == live
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.stats_daily)).scalar_one() == stored


def test_the_open_day_adds_what_arrives_after_its_partial_sum(ris, runtime, tmp_path) -> None:
    today = datetime.now(Zone(runtime.settings.timezone).tz).date()
    service = StatsService(runtime.db, zone=Zone(runtime.settings.timezone), data_dir=runtime.settings.data_dir,
                           grace_s=0)  # everything up to now is summed into the partial sum at once
    assert service.daily(first=today, last=today, hospitals=None) == []
    _send(ris, runtime, tmp_path)
    [first] = service.daily(first=today, last=today, hospitals=None)
    assert first["instances"] == 3 and first["reports"] == 1 and first["studies"] == 3
    make_instance(tmp_path / "late.dcm", index=9, study_uid="1.2.826.0.1.3680043.10.1.8")
    assert runtime.instances.store(hospital_id="h1", data=dataset_bytes(tmp_path / "late.dcm"),
                                   transfer_syntax_uid=ExplicitVRLittleEndian).status == Status.SUCCESS
    [again] = service.daily(first=today, last=today, hospitals=None)
    assert again["instances"] == 4 and again["studiesWithImages"] == 2 and again["reports"] == 1
    # The same as summing the whole day afresh.
    assert again == _service(runtime).daily(first=today, last=today, hospitals=None)[0]


def test_gauges_name_gateways_callbacks_and_disk(runtime, tenant) -> None:
    g = _service(runtime).gauges(hospitals=None)
    assert g["gateways"] == [] and g["discrepancies"] == []
    assert g["disk"]["totalBytes"] >= g["disk"]["freeBytes"] > 0


def test_a_range_backwards_or_too_long_is_refused(runtime) -> None:
    with pytest.raises(Invalid):
        _service(runtime).daily(first=date(2026, 2, 1), last=date(2026, 1, 1), hospitals=None)
    with pytest.raises(Invalid):
        _service(runtime).daily(first=date(2024, 1, 1), last=date(2026, 1, 1), hospitals=None)
