"""Reconciliation that heals, against dcmtk's dcmqrscp as the hospital's PACS (C-FIND, then C-MOVE or C-GET)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from yingyun.archive.reconcile import discrepancies
from yingyun.gateway.heal import Healer, set_retrieve
from yingyun.gateway.receiver import build_receiver
from yingyun.metrics.state import StateCollector
from yingyun.storage import schema as s

from ..archive.conftest import storescu
from ..metrics.test_state import samples
from ..support.dicom_peers import make_instance
from ..support.qrscp import Dcmqrscp

STUDY_UID = "1.2.826.0.1.3680043.8.498.1717.1"
YINGYUN = str(Path(sys.executable).parent / "yingyun")
SERIES = ("1.2.826.0.1.3680043.8.498.1717.1.1", "1.2.826.0.1.3680043.8.498.1717.1.2")


@pytest.fixture
def gateway(runtime, tenant):
    server = build_receiver(runtime, port=0)
    server.start()
    yield server
    server.shutdown()


@pytest.fixture
def qrscp(tmp_path, gateway):
    pacs = Dcmqrscp(tmp_path / "pacs", peers={"YINGYUN": ("127.0.0.1", gateway.port)}).start()
    yield pacs
    pacs.stop()


@pytest.fixture
def study(tmp_path):
    """20 images in two series (12 + 8), as files."""
    folder = tmp_path / "study"
    folder.mkdir()
    files = []
    for i in range(20):
        path = folder / f"i{i:02d}.dcm"
        ds = make_instance(path, index=i, study_uid=STUDY_UID, series_uid=SERIES[0 if i < 12 else 1])
        files.append((path, str(ds.SOPInstanceUID)))
    return files


def log_20(ris) -> None:
    body = {"studyId": "S1", "accessNumber": "A-1", "patientName": "张三丰", "studyUid": STUDY_UID,
            "studyDate": "2026-11-20 09:30:00", "reportCnt": 0, "pdfCnt": 0, "seriesCnt": 2, "imageCnt": 20}
    assert ris.post("/ris/reconcilelog", body)["code"] == 0


def held(runtime) -> list[str]:
    with runtime.db.read() as conn:
        return list(conn.execute(select(s.instances.c.sop_uid).where(s.instances.c.study_uid == STUDY_UID))
                    .scalars())


def open_discrepancies(runtime):
    with runtime.db.read() as conn:
        return discrepancies(conn)


def healer(runtime) -> Healer:
    return Healer(db=runtime.db, tenancy=runtime.tenancy, store=runtime.instances, ae_title="YINGYUN")


@pytest.mark.parametrize("mode", ["move", "get"])
def test_a_study_sent_15_of_20_is_completed_from_the_pacs(runtime, ris, gateway, qrscp, study, mode) -> None:
    runtime.tenancy.add_pacs(ae_title="PACS", host="127.0.0.1", port=qrscp.port, hospital_id="h1")
    if mode == "get":
        with runtime.db.write() as conn:
            set_retrieve(conn, ae_title="PACS", retrieve="get")
    qrscp.store(*(p for p, _ in study))
    sent = storescu(gateway.port, *(p for p, _ in study[:15]), calling="PACS")
    assert sent.returncode == 0, sent.stderr
    log_20(ris)
    (before,) = open_discrepancies(runtime)
    assert (before["kind"], before["received"]["images"]) == ("mismatch", 15)

    record = healer(runtime).heal(hospital_id="h1", study_id="S1")

    assert (record["state"], record["final"], record["listedByPacs"], record["asked"], record["retrieved"]) == (
        "healed", False, 20, 5, 5), record
    assert record["retrieve"] == mode
    assert open_discrepancies(runtime) == []
    uids = held(runtime)
    assert sorted(uids) == sorted(u for _, u in study)  # 20, each once
    with runtime.db.read() as conn:
        (dicom,) = conn.execute(select(s.dicom_studies).where(s.dicom_studies.c.study_uid == STUDY_UID)).all()
        assert (dicom.n_series, dicom.n_images) == (2, 20)
        assert conn.execute(select(func.count()).select_from(s.superseded_instances)).scalar_one() == 0
    # Nothing left to do: a second heal asks for nothing.
    again = healer(runtime).heal(hospital_id="h1", study_id="S1")
    assert again["state"] == "healed" and again["attempts"] == 1
    assert len(held(runtime)) == 20


@pytest.mark.parametrize("mode", ["move", "get"])
def test_a_pacs_that_cannot_deliver_two_ends_in_a_final_discrepancy_naming_them(runtime, ris, gateway, qrscp, study,
                                                                               mode) -> None:
    runtime.tenancy.add_pacs(ae_title="PACS", host="127.0.0.1", port=qrscp.port, hospital_id="h1")
    if mode == "get":
        with runtime.db.write() as conn:
            set_retrieve(conn, ae_title="PACS", retrieve="get")
    qrscp.store(*(p for p, _ in study))
    lost = [study[16][1], study[18][1]]
    for uid in lost:
        qrscp.lose_file(uid)
    assert storescu(gateway.port, *(p for p, _ in study[:15]), calling="PACS").returncode == 0
    log_20(ris)

    record = healer(runtime).heal(hospital_id="h1", study_id="S1")

    assert (record["state"], record["final"], record["asked"], record["retrieved"]) == ("final", True, 5, 3), record
    assert record["missingSopInstanceUids"] == sorted(lost)
    assert record["detail"].startswith("final:")
    (open_,) = open_discrepancies(runtime)
    assert open_["received"]["images"] == 18
    assert open_["heal"]["final"] is True and open_["heal"]["missingSopInstanceUids"] == sorted(lost)
    # Final: the scheduled pass leaves it alone until a newer log speaks of the study.
    assert healer(runtime).due() == []
    assert len(held(runtime)) == 18
    got = samples(StateCollector(runtime.db, runtime.settings))
    assert got[("yingyun_heal_attempts_total", ())] == 1
    assert got[("yingyun_heal_retrieved_instances_total", ())] == 3
    assert got[("yingyun_heal_studies", (("state", "final"),))] == 1
    assert got[("yingyun_heal_studies", (("state", "healed"),))] == 0


def test_a_pacs_that_lacks_two_counts_them_as_unlisted(runtime, ris, gateway, qrscp, study) -> None:
    runtime.tenancy.add_pacs(ae_title="PACS", host="127.0.0.1", port=qrscp.port, hospital_id="h1")
    qrscp.store(*(p for p, _ in study[:18]))
    assert storescu(gateway.port, *(p for p, _ in study[:15]), calling="PACS").returncode == 0
    log_20(ris)

    record = healer(runtime).heal(hospital_id="h1", study_id="S1")

    assert (record["state"], record["listedByPacs"], record["retrieved"], record["unlisted"]) == ("final", 18, 3, 2)
    assert record["missingSopInstanceUids"] == []
    assert "2 expected image(s) are not listed by the PACS" in record["detail"]


def test_an_unreachable_pacs_is_a_failure_retried_later(runtime, ris, gateway, study) -> None:
    from ..support.net import free_port

    runtime.tenancy.add_pacs(ae_title="PACS", host="127.0.0.1", port=free_port(), hospital_id="h1")
    assert storescu(gateway.port, *(p for p, _ in study[:15]), calling="PACS").returncode == 0
    log_20(ris)
    h = healer(runtime)
    record = h.heal(hospital_id="h1", study_id="S1")
    assert (record["state"], record["final"]) == ("failed", False)
    assert "PACS" in record["detail"]
    assert h.due() == []  # backing off
    (short,) = h.due(now=10**12)
    assert short.study_id == "S1"


def admin(settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([YINGYUN, "admin", *args, "--data-dir", str(settings.data_dir),
                           "--database-url", settings.database_url], capture_output=True, text=True, check=check)


def test_the_admin_commands_register_get_and_heal_now(runtime, settings, ris, gateway, qrscp, study) -> None:
    admin(settings, "pacs", "add", "--ae-title", "PACS", "--host", "127.0.0.1", "--port", str(qrscp.port),
          "--hospital", "h1", "--retrieve", "get")
    (listed,) = json.loads(admin(settings, "pacs", "list", "--json").stdout)
    assert listed["retrieve"] == "get"
    refused = admin(settings, "pacs", "add", "--ae-title", "PACS", "--host", "127.0.0.1", "--port", "104",
                    "--hospital", "h1", "--retrieve", "push", check=False)
    assert refused.returncode != 0 and "--retrieve is move or get" in refused.stderr
    assert json.loads(admin(settings, "pacs", "list", "--json").stdout)[0]["port"] == qrscp.port  # unchanged
    qrscp.store(*(p for p, _ in study[:19]))
    assert storescu(gateway.port, *(p for p, _ in study[:15]), calling="PACS").returncode == 0
    log_20(ris)

    record = json.loads(admin(settings, "reconcile", "heal", "--study-id", "S1").stdout)

    assert (record["state"], record["retrieve"], record["retrieved"], record["unlisted"]) == ("final", "get", 4, 1)
    (row,) = json.loads(admin(settings, "reconcile", "--json").stdout)
    assert row["studyId"] == "S1" and row["received"]["images"] == 19
    assert row["heal"]["final"] is True and row["heal"]["retrieved"] == 4
    unknown = admin(settings, "reconcile", "heal", "--study-id", "NOPE", check=False)
    assert unknown.returncode == 1 and "no reconciliation log lists this study id" in unknown.stderr
    admin(settings, "pacs", "remove", "--ae-title", "PACS")
    with runtime.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(s.heal_peers)).scalar_one() == 0
