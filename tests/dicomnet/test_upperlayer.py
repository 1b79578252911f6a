"""The DICOM upper-layer SCP against real peers over loopback.

Peers: dcmtk (echoscu/storescu/findscu), pynetdicom as an SCU, and a scripted
raw-socket peer that misbehaves.  Requests and responses are encoded/decoded
with pydicom/pynetdicom, never with the module under test.
"""
from __future__ import annotations

import io
import os
import select
import signal
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from yingyun.dicomnet.dimse import ServiceFailure, StoreResponse, build_response
from yingyun.dicomnet.server import UpperLayerServer
from yingyun.dicomnet.uids import IMPLEMENTATION_CLASS_UID

from ..support.dicom_peers import (
    ABORT_RQ,
    CT_IMAGE_STORAGE,
    RELEASE_RQ,
    SCP_AE_TITLE,
    STUDY_ROOT_FIND,
    VERIFICATION,
    RawPeer,
    RecordingProvider,
    associate_rq,
    command_set,
    dataset_bytes,
    decode_abort,
    decode_command,
    decode_rj,
    echoscu,
    encode_dataset,
    make_instance,
    normalise_like_dcmtk,
    pdata,
    pdv,
    pynetdicom_associate,
    run_dcmtk,
    store_rq,
)

AE_TITLE = SCP_AE_TITLE
WAIT = 5.0
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def assert_echo_ok(server: UpperLayerServer) -> None:
    proc = echoscu(server.port, called=AE_TITLE)
    assert proc.returncode == 0, proc.stderr


def wait_for(predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def closed_session(provider: RecordingProvider, index: int = -1):
    session = provider.sessions[index]
    assert session.closed.wait(WAIT), "session.close() was never called"
    return session


def study_match(level: str, n: int) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.QueryRetrieveLevel = level
    ds.PatientName = f"Match^{n}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.100.{n}"
    if level in ("SERIES", "IMAGE"):
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.200.{n}"
    if level == "IMAGE":
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.300.{n}"
    return ds


# ---------------------------------------------------------------- dcmtk peers

def test_echoscu_success_and_orderly_release(ul_server):
    srv, provider = ul_server
    proc = echoscu(srv.port, called=AE_TITLE, calling="MODALITY1")
    assert proc.returncode == 0, proc.stderr
    session = closed_session(provider)
    assert session.aborted is False
    info = session.info
    assert (info.calling_ae, info.called_ae, info.peer_host) == ("MODALITY1", AE_TITLE, "127.0.0.1")
    assert info.peer_port > 0 and len(info.assoc_id) >= 8


def test_storescu_generated_instances_arrive_byte_for_byte(ul_server, tmp_path):
    srv, provider = ul_server
    paths = [tmp_path / f"i{i}.dcm" for i in range(6)]
    for i, path in enumerate(paths):
        make_instance(path, index=i, rows=40 + i, cols=40)
    proc = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, "+sd",
                     "127.0.0.1", str(srv.port), str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    session = closed_session(provider)
    assert session.aborted is False
    by_uid = {item.request.sop_instance_uid: item for item in session.stored}
    assert len(by_uid) == len(paths)
    for path in paths:
        ds = pydicom.dcmread(path)
        item = by_uid[ds.SOPInstanceUID]
        assert item.data == dataset_bytes(path)
        assert item.kind == "memory"
        assert item.request.sop_class_uid == CT_IMAGE_STORAGE
        assert item.request.transfer_syntax_uid == ExplicitVRLittleEndian
        assert item.request.move_originator_ae is None
    assert len({item.request.message_id for item in session.stored}) == len(paths)


TS_CASES = [
    ("MR_small_implicit.dcm", "--propose-implicit", ImplicitVRLittleEndian),
    ("CT_small.dcm", "--propose-little", ExplicitVRLittleEndian),
    ("MR_small_bigendian.dcm", "--propose-big", ExplicitVRBigEndian),
    ("SC_rgb_jpeg_dcmtk.dcm", "--propose-jpeg8", JPEGBaseline8Bit),
    ("JPGExtended.dcm", "--propose-jpeg12", "1.2.840.10008.1.2.4.51"),
    ("SC_rgb_jpeg_gdcm.dcm", "--propose-lossless", "1.2.840.10008.1.2.4.70"),
    ("MR_small_jpeg_ls_lossless.dcm", "--propose-jls-lossless", "1.2.840.10008.1.2.4.80"),
    ("JPEGLSNearLossless_08.dcm", "--propose-jls-lossy", "1.2.840.10008.1.2.4.81"),
    ("MR_small_jp2klossless.dcm", "--propose-j2k-lossless", "1.2.840.10008.1.2.4.90"),
    ("JPEG2000.dcm", "--propose-j2k-lossy", "1.2.840.10008.1.2.4.91"),
    ("MR_small_RLE.dcm", "--propose-rle", "1.2.840.10008.1.2.5"),
]


@pytest.mark.parametrize("name,option,syntax", TS_CASES, ids=[c[0] for c in TS_CASES])
def test_storescu_transfer_syntaxes_pass_through_unchanged(ul_server, tmp_path, name, option, syntax):
    srv, provider = ul_server
    src = normalise_like_dcmtk(get_testdata_file(name), tmp_path / name)
    proc = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, option,
                     "127.0.0.1", str(srv.port), str(src))
    assert proc.returncode == 0, proc.stderr
    session = closed_session(provider)
    [item] = session.stored
    assert item.request.transfer_syntax_uid == syntax
    assert item.data == dataset_bytes(src)


def test_storescu_deflated_dataset_is_not_inflated(ul_server, tmp_path):
    # dcmtk inflates and re-deflates on send, so the compressed bytes may
    # differ from the file; what must hold is that store() got a deflate
    # stream (not inflated data) whose content is the file's dataset.
    srv, provider = ul_server
    src = normalise_like_dcmtk(get_testdata_file("image_dfl.dcm"), tmp_path / "dfl.dcm")
    proc = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, "--propose-deflated",
                     "127.0.0.1", str(srv.port), str(src))
    assert proc.returncode == 0, proc.stderr
    [item] = closed_session(provider).stored
    assert item.request.transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    inflate = lambda raw: zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw)  # noqa: E731
    assert inflate(item.data) == inflate(dataset_bytes(src))
    assert len(item.data) < len(inflate(item.data))


def test_storescu_small_pdus_are_reassembled(ul_server, tmp_path):
    srv, provider = ul_server
    src = normalise_like_dcmtk(get_testdata_file("CT_small.dcm"), tmp_path / "ct.dcm")
    assert len(dataset_bytes(src)) > 8 * 4096  # spans many 4 KiB PDUs
    proc = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, "--max-send-pdu", "4096",
                     "127.0.0.1", str(srv.port), str(src), str(src))
    assert proc.returncode == 0, proc.stderr
    session = closed_session(provider)
    assert [item.data for item in session.stored] == [dataset_bytes(src)] * 2


@pytest.mark.parametrize("level", ["STUDY", "SERIES", "IMAGE"])
def test_findscu_study_root_levels(make_ul_server, tmp_path, level):
    matches = [study_match(level, n) for n in range(3)]
    srv, provider = make_ul_server(RecordingProvider(matches=matches))
    keys = ["-k", f"QueryRetrieveLevel={level}", "-k", "PatientName", "-k", "StudyInstanceUID"]
    if level in ("SERIES", "IMAGE"):
        keys += ["-k", "SeriesInstanceUID"]
    if level == "IMAGE":
        keys += ["-k", "SOPInstanceUID"]
    proc = run_dcmtk("findscu", "-S", "-aet", "FINDER", "-aec", AE_TITLE, "-X", "-od", str(tmp_path),
                     *keys, "127.0.0.1", str(srv.port))
    assert proc.returncode == 0, proc.stderr
    session = closed_session(provider)
    [(sop_class, identifier)] = session.finds
    assert sop_class == STUDY_ROOT_FIND
    assert identifier.QueryRetrieveLevel == level
    assert "PatientName" in identifier
    responses = sorted(tmp_path.glob("rsp*.dcm"))
    assert len(responses) == len(matches)
    for path, match in zip(responses, matches, strict=True):
        got = pydicom.dcmread(path)
        assert got.PatientName == match.PatientName
        assert got.StudyInstanceUID == match.StudyInstanceUID
        if level == "IMAGE":
            assert got.SOPInstanceUID == match.SOPInstanceUID
    assert session.find_exhausted


def test_findscu_patient_root(make_ul_server, tmp_path):
    match = Dataset()
    match.QueryRetrieveLevel = "PATIENT"
    match.PatientID = "P0042"
    srv, provider = make_ul_server(RecordingProvider(matches=[match]))
    proc = run_dcmtk("findscu", "-P", "-aet", "FINDER", "-aec", AE_TITLE, "-X", "-od", str(tmp_path),
                     "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID", "127.0.0.1", str(srv.port))
    assert proc.returncode == 0, proc.stderr
    [(sop_class, _)] = closed_session(provider).finds
    assert sop_class == PatientRootQueryRetrieveInformationModelFind
    [rsp] = tmp_path.glob("rsp*.dcm")
    assert pydicom.dcmread(rsp).PatientID == "P0042"


# ---------------------------------------------------------------- pynetdicom SCU

def test_pynetdicom_echo_store_many_and_find(make_ul_server, tmp_path):
    matches = [study_match("STUDY", n) for n in range(4)]
    srv, provider = make_ul_server(RecordingProvider(matches=matches))
    paths = []
    for i in range(120):
        paths.append(tmp_path / f"i{i:03d}.dcm")
        make_instance(paths[-1], index=i, rows=16, cols=16 + i % 7)
    assoc = pynetdicom_associate(srv.port, called=AE_TITLE, contexts=[
        (VERIFICATION, [ImplicitVRLittleEndian]),
        (CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]),
        (STUDY_ROOT_FIND, [ImplicitVRLittleEndian])])
    try:
        assert assoc.send_c_echo().Status == 0x0000
        for path in paths:
            assert assoc.send_c_store(path).Status == 0x0000
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientName = "*"
        query.StudyInstanceUID = ""
        results = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    assert [status.Status for status, _ in results] == [0xFF00] * 4 + [0x0000]
    assert [str(ident.PatientName) for _, ident in results[:-1]] == [f"Match^{n}" for n in range(4)]
    assert results[-1][1] is None
    session = closed_session(provider)
    assert session.aborted is False
    assert [item.data for item in session.stored] == [dataset_bytes(p) for p in paths]
    assert session.finds[0][1].PatientName == "*"


def test_c_cancel_stops_a_running_find(make_ul_server):
    cancel_sent = threading.Event()

    def slow_after_cancel(i: int) -> None:
        # Give the C-CANCEL (sent by pynetdicom's DUL thread) time to arrive.
        if i == 0:
            assert cancel_sent.wait(WAIT)
        time.sleep(0.02)

    matches = [study_match("STUDY", n) for n in range(50)]
    srv, provider = make_ul_server(RecordingProvider(matches=matches, find_hook=slow_after_cancel))
    assoc = pynetdicom_associate(srv.port, called=AE_TITLE,
                                 contexts=[(STUDY_ROOT_FIND, [ImplicitVRLittleEndian])])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    statuses = []
    try:
        context_id = assoc.accepted_contexts[0].context_id
        for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind, msg_id=77):
            statuses.append(status.Status)
            if len(statuses) == 1:
                assoc.send_c_cancel(77, context_id)
                cancel_sent.set()
    finally:
        assoc.release()
    assert statuses[0] == 0xFF00 and statuses[-1] == 0xFE00
    assert set(statuses[:-1]) == {0xFF00} and len(statuses) <= 6
    session = closed_session(provider)
    assert session.find_closed.is_set() and not session.find_exhausted


# ---------------------------------------------------------------- negotiation

def test_associate_ac_per_context_results_checked_with_pynetdicom(make_ul_server):
    srv, provider = make_ul_server(max_pdu=65536)
    unknown_ts = "1.2.3.4.5.6"
    contexts = [
        (1, VERIFICATION, [ImplicitVRLittleEndian]),
        (3, CT_IMAGE_STORAGE, [unknown_ts, ExplicitVRLittleEndian, ImplicitVRLittleEndian]),
        (5, "1.2.3.4.999", [ImplicitVRLittleEndian]),                   # unknown abstract syntax
        (7, STUDY_ROOT_FIND, [JPEGBaseline8Bit]),                       # FIND: uncompressed only
        (9, STUDY_ROOT_FIND, [ExplicitVRBigEndian, ImplicitVRLittleEndian]),
        (11, PatientRootQueryRetrieveInformationModelFind, [ImplicitVRLittleEndian]),
        (13, "1.2.840.10008.5.1.4.1.1.77.1.999", [JPEGBaseline8Bit]),   # storage by prefix
        (15, "1.2.840.10008.5.1.4.1.2.2.2", [ImplicitVRLittleEndian]),  # C-MOVE: not offered
        (17, MR_IMAGE_STORAGE, [unknown_ts]),
    ]
    with RawPeer(srv.port) as peer:
        ac = peer.associate(called=AE_TITLE, contexts=contexts, max_pdu=8192,
                            roles=[(CT_IMAGE_STORAGE, True, True), ("1.2.3.4.999", True, True)],
                            async_window=(5, 5), user_identity=(1, b"alice", True))
        results = {cx.context_id: (cx.result, cx.transfer_syntax) for cx in ac.presentation_context}
        assert results[1] == (0, ImplicitVRLittleEndian)
        assert results[3] == (0, ExplicitVRLittleEndian)
        assert results[5][0] == 3
        assert results[7][0] == 4
        assert results[9] == (0, ExplicitVRBigEndian)
        assert results[11] == (0, ImplicitVRLittleEndian)
        assert results[13] == (0, JPEGBaseline8Bit)
        assert results[15][0] == 3
        assert results[17][0] == 4
        user = ac.user_information
        assert user.maximum_length == 65536
        assert user.implementation_class_uid == IMPLEMENTATION_CLASS_UID
        roles = user.role_selection
        assert set(roles) == {CT_IMAGE_STORAGE}
        assert (roles[CT_IMAGE_STORAGE].scu_role, roles[CT_IMAGE_STORAGE].scp_role) == (True, False)
        window = user.async_ops_window
        assert (window.max_operations_invoked, window.max_operations_performed) == (1, 1)
        assert not [item for item in user.user_data if item.item_type == 0x59]
        assert ac.called_ae_title == AE_TITLE and ac.calling_ae_title == "RAWPEER"
        peer.send(RELEASE_RQ)
        assert peer.recv_pdu() == (0x06, bytes([6, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
        peer.expect_eof()
    assert closed_session(provider).aborted is False


def test_wrong_called_ae_rejected_before_provider(ul_server):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        peer.send(associate_rq(called="yingyun"))  # case-sensitive
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x03
        rj = decode_rj(raw)
        assert (rj.result, rj.source, rj.reason_diagnostic) == (1, 1, 7)
        peer.expect_eof()
    assert provider.infos == []
    assert_echo_ok(srv)


def test_unknown_application_context_rejected(ul_server):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        peer.send(associate_rq(called=AE_TITLE, application_context="1.2.3.4"))
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x03
        rj = decode_rj(raw)
        assert (rj.result, rj.source, rj.reason_diagnostic) == (1, 1, 2)
    assert provider.infos == []


def test_unknown_calling_ae_rejected_by_provider(make_ul_server):
    srv, provider = make_ul_server(RecordingProvider(allowed_calling={"ECHOSCU"}))
    with RawPeer(srv.port) as peer:
        peer.send(associate_rq(called=AE_TITLE, calling="STRANGER"))
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x03
        rj = decode_rj(raw)
        assert (rj.result, rj.source, rj.reason_diagnostic) == (1, 1, 3)
    assert [info.calling_ae for info in provider.infos] == ["STRANGER"]
    assert provider.sessions == []
    assert_echo_ok(srv)


def test_associations_beyond_the_limit_get_transient_reject(make_ul_server):
    srv, provider = make_ul_server(max_associations=2)
    holders = [RawPeer(srv.port), RawPeer(srv.port)]
    try:
        for peer in holders:
            peer.associate(called=AE_TITLE)
        with RawPeer(srv.port) as extra:
            extra.send(associate_rq(called=AE_TITLE))
            pdu_type, raw = extra.recv_pdu()
            assert pdu_type == 0x03
            rj = decode_rj(raw)
            assert (rj.result, rj.source, rj.reason_diagnostic) == (2, 3, 2)
        assert len(provider.sessions) == 2
        holders[0].send(RELEASE_RQ)
        assert holders[0].recv_pdu()[0] == 0x06
    finally:
        for peer in holders:
            peer.close()
    wait_for(lambda: srv.active_associations == 0)
    assert_echo_ok(srv)


# ---------------------------------------------------------------- DIMSE over a raw peer

def _store_context(peer: RawPeer, *, max_pdu: int = 16384) -> None:
    ac = peer.associate(called=AE_TITLE, contexts=[(1, CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]),
                                                   (3, VERIFICATION, [ImplicitVRLittleEndian])],
                        max_pdu=max_pdu)
    assert [cx.result for cx in ac.presentation_context] == [0, 0]


def test_pdv_fragments_across_and_within_pdus_are_reassembled(ul_server, tmp_path):
    srv, provider = ul_server
    make_instance(tmp_path / "a.dcm", rows=64, cols=64)
    data = dataset_bytes(tmp_path / "a.dcm")
    uid = pydicom.dcmread(tmp_path / "a.dcm").SOPInstanceUID
    command = store_rq(9, uid)
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        # Command in three fragments, two of them sharing a PDU with data.
        stream = pdata(pdv(1, command[:10], command=True, last=False))
        stream += pdata(pdv(1, command[10:20], command=True, last=False),
                        pdv(1, command[20:], command=True, last=True),
                        pdv(1, data[:7], command=False, last=False))
        pieces = [data[i:i + 1000] for i in range(7, len(data), 1000)]
        for piece in pieces[:-1]:
            stream += pdata(pdv(1, piece[:300], command=False, last=False),
                            pdv(1, piece[300:], command=False, last=False))
        stream += pdata(pdv(1, pieces[-1], command=False, last=True))
        for i in range(0, len(stream), 777):  # and dribble it over TCP
            peer.send(stream[i:i + 777])
        cid, rsp, _ = peer.recv_message()
        assert cid == 1
        assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8001, 9, 0x0000)
        assert rsp.AffectedSOPInstanceUID == uid and rsp.AffectedSOPClassUID == CT_IMAGE_STORAGE
        peer.send(RELEASE_RQ)
        assert peer.recv_pdu()[0] == 0x06
    session = closed_session(provider)
    [item] = session.stored
    assert item.data == data and item.request.message_id == 9


def test_store_statuses_exceptions_and_sop_class_mismatch(make_ul_server, tmp_path):
    def hook(req, data):
        if req.message_id == 2:
            raise RuntimeError("disk on fire")

    srv, provider = make_ul_server(RecordingProvider(store_hook=hook))
    make_instance(tmp_path / "a.dcm")
    data = dataset_bytes(tmp_path / "a.dcm")
    with RawPeer(srv.port) as peer:
        _store_context(peer)

        def store(message_id: int, sop_class: str = CT_IMAGE_STORAGE) -> Dataset:
            peer.send(pdata(pdv(1, store_rq(message_id, f"1.2.3.{message_id}", sop_class=sop_class),
                                command=True, last=True)))
            peer.send(pdata(pdv(1, data, command=False, last=True)))
            _, rsp, _ = peer.recv_message()
            assert rsp.MessageIDBeingRespondedTo == message_id
            return rsp

        assert store(1).Status == 0x0000
        assert store(2).Status == 0xC211           # store() raised
        mismatch = store(3, sop_class=MR_IMAGE_STORAGE)
        assert mismatch.Status == 0xA900 and "ErrorComment" in mismatch
        provider.last().store_status = 0xA700      # provider's own status passes through
        assert store(4).Status == 0xA700
        provider.last().store_status = 0x0000
        assert store(5).Status == 0x0000
        # ...and its Error Comment, as LO: 64 characters of the default repertoire, no backslash
        provider.last().store_status = StoreResponse(0xC210, "bad\\value é " + "x" * 80)
        refused = store(6)
        assert refused.Status == 0xC210 and refused.ErrorComment == ("bad?value ? " + "x" * 80)[:64]
        provider.last().store_status = StoreResponse(0x0000, "never sent with a success")
        assert "ErrorComment" not in store(7)
        peer.send(RELEASE_RQ)
        assert peer.recv_pdu()[0] == 0x06
    session = closed_session(provider)
    assert [item.request.message_id for item in session.stored] == [1, 2, 4, 5, 6, 7]
    assert session.aborted is False


def test_unknown_dimse_command_gets_unrecognised_operation(ul_server):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        n_action = command_set(CommandField=0x0130, MessageID=5, CommandDataSetType=0x0101,
                               RequestedSOPClassUID=CT_IMAGE_STORAGE, RequestedSOPInstanceUID="1.2.3")
        peer.send(pdata(pdv(3, n_action, command=True, last=True)))
        _, rsp, _ = peer.recv_message()
        assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8130, 5, 0x0211)
        echo = command_set(AffectedSOPClassUID=VERIFICATION, CommandField=0x0030, MessageID=6,
                           CommandDataSetType=0x0101)
        peer.send(pdata(pdv(3, echo, command=True, last=True)))
        cid, rsp, data = peer.recv_message()
        assert (cid, rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (3, 0x8030, 6, 0)
        assert data is None
    assert closed_session(provider).aborted is True  # we hung up without release


def test_c_find_identifiers_fragmented_to_peer_max_pdu(make_ul_server):
    big = Dataset()
    big.QueryRetrieveLevel = "STUDY"
    big.StudyInstanceUID = "1.2.3.4"
    big.StudyComments = "x" * 10000
    srv, provider = make_ul_server(RecordingProvider(matches=[big, big]))
    with RawPeer(srv.port) as peer:
        ac = peer.associate(called=AE_TITLE, contexts=[(1, STUDY_ROOT_FIND, [ExplicitVRLittleEndian])],
                            max_pdu=4096)
        assert ac.presentation_context[0].result == 0
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = ""
        rq = command_set(AffectedSOPClassUID=STUDY_ROOT_FIND, CommandField=0x0020, MessageID=3,
                         Priority=0, CommandDataSetType=0x0000)
        peer.send(pdata(pdv(1, rq, command=True, last=True),
                        pdv(1, encode_dataset(query, implicit=False), command=False, last=True)))
        del peer.pdu_lengths[:]
        identifiers = []
        while True:
            _, rsp, data = peer.recv_message()
            assert rsp.MessageIDBeingRespondedTo == 3
            if rsp.Status != 0xFF00:
                break
            identifiers.append(read_dataset(io.BytesIO(data), False, True))
        assert rsp.Status == 0x0000
        # Each pending: 1 command PDU + >= 3 PDUs for a 10 kB identifier.
        assert max(peer.pdu_lengths) <= 4096 and len(peer.pdu_lengths) >= 2 * 4 + 1
        assert [ds.StudyComments for ds in identifiers] == ["x" * 10000] * 2
    assert provider.last().finds[0][1].QueryRetrieveLevel == "STUDY"


def test_a_service_failure_is_answered_with_its_status_and_comment(make_ul_server, tmp_path):
    """A provider maps its errors to DIMSE statuses by raising ServiceFailure, from store or find;
    one that is not a failure status is answered as the provider's own failure."""
    failures = {2: ServiceFailure(0xA700, "disk nearly full"), 3: ServiceFailure(0x0000, "not a failure")}

    def hook(req, data):
        if req.message_id in failures:
            raise failures[req.message_id]

    srv, provider = make_ul_server(RecordingProvider(store_hook=hook))
    make_instance(tmp_path / "a.dcm")
    data = dataset_bytes(tmp_path / "a.dcm")
    with RawPeer(srv.port) as peer:
        peer.associate(called=AE_TITLE, contexts=[(1, CT_IMAGE_STORAGE, [ExplicitVRLittleEndian]),
                                                  (3, STUDY_ROOT_FIND, [ImplicitVRLittleEndian])])
        responses = []
        for message_id in (1, 2, 3):
            peer.send(pdata(pdv(1, store_rq(message_id, f"1.2.3.{message_id}"), command=True, last=True),
                            pdv(1, data, command=False, last=True)))
            responses.append(peer.recv_message()[1])
        assert [r.Status for r in responses] == [0x0000, 0xA700, 0xC211]
        assert responses[1].ErrorComment == "disk nearly full" and "ErrorComment" not in responses[2]
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        provider.last().find_error = ServiceFailure(0xA900, "unsupported level")
        rq = command_set(AffectedSOPClassUID=STUDY_ROOT_FIND, CommandField=0x0020, MessageID=4, Priority=0,
                         CommandDataSetType=0x0000)
        peer.send(pdata(pdv(3, rq, command=True, last=True), pdv(3, encode_dataset(query), command=False, last=True)))
        _, rsp, data_back = peer.recv_message()
        assert (rsp.Status, rsp.ErrorComment, data_back) == (0xA900, "unsupported level", None)
        peer.send(RELEASE_RQ)
        assert peer.recv_pdu()[0] == 0x06
    assert closed_session(provider).aborted is False


def test_c_find_failure_statuses(make_ul_server):
    srv, provider = make_ul_server(RecordingProvider(find_error=RuntimeError("db down")))
    with RawPeer(srv.port) as peer:
        peer.associate(called=AE_TITLE, contexts=[(1, STUDY_ROOT_FIND, [ImplicitVRLittleEndian]),
                                                  (3, CT_IMAGE_STORAGE, [ImplicitVRLittleEndian])])
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"

        def find(context_id: int, message_id: int) -> int:
            rq = command_set(AffectedSOPClassUID=STUDY_ROOT_FIND, CommandField=0x0020,
                             MessageID=message_id, Priority=0, CommandDataSetType=0x0000)
            peer.send(pdata(pdv(context_id, rq, command=True, last=True),
                            pdv(context_id, encode_dataset(query), command=False, last=True)))
            _, rsp, data = peer.recv_message()
            assert data is None and rsp.CommandField == 0x8020
            return rsp.Status

        assert find(1, 1) == 0xC311   # find() raised
        assert find(3, 2) == 0x0211   # C-FIND on a storage context
        peer.send(RELEASE_RQ)
        assert peer.recv_pdu()[0] == 0x06
    assert closed_session(provider).aborted is False


def test_large_dataset_is_spooled_to_a_file_the_provider_may_keep(make_ul_server, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    kept = tmp_path / "kept.dcm"

    def keep_first(req, data):
        assert isinstance(data.name, str) and Path(data.name).parent == spool
        if req.message_id == 1:
            os.replace(data.name, kept)

    srv, provider = make_ul_server(RecordingProvider(store_hook=keep_first), spool_threshold=4096,
                                spool_dir=str(spool))
    src = tmp_path / "src" / "big.dcm"
    src.parent.mkdir()
    make_instance(src, rows=64, cols=64)
    proc = run_dcmtk("storescu", "-aet", "MODALITY", "-aec", AE_TITLE, "127.0.0.1", str(srv.port),
                     str(src), str(src))
    assert proc.returncode == 0, proc.stderr
    session = closed_session(provider)
    assert [(item.kind, item.data) for item in session.stored] == [("file", dataset_bytes(src))] * 2
    assert kept.read_bytes() == dataset_bytes(src)
    assert list(spool.iterdir()) == []


def test_spool_folder_is_made_at_start_and_an_unwritable_spool_refuses_only_that_store(make_ul_server, tmp_path):
    spool = tmp_path / "fresh" / "spool"  # nothing made it
    srv, provider = make_ul_server(spool_threshold=4096, spool_dir=str(spool))
    assert spool.is_dir()
    make_instance(tmp_path / "a.dcm", rows=64, cols=64)
    data = dataset_bytes(tmp_path / "a.dcm")
    assert len(data) > 4096
    with RawPeer(srv.port) as peer:
        _store_context(peer)

        def store(message_id: int) -> Dataset:
            peer.send(pdata(pdv(1, store_rq(message_id, f"1.2.3.{message_id}"), command=True, last=True)))
            for start in range(0, len(data), 2048):
                peer.send(pdata(pdv(1, data[start:start + 2048], command=False, last=start + 2048 >= len(data))))
            _, rsp, _ = peer.recv_message()
            assert rsp.MessageIDBeingRespondedTo == message_id
            return rsp

        assert store(1).Status == 0x0000
        wait_for(lambda: not any(spool.iterdir()))  # its spool file goes once the response is out
        spool.rmdir()  # the disk fills up, say: the next spool file cannot be written
        refused = store(2)
        assert refused.Status == 0xA700 and refused.ErrorComment
        spool.mkdir()
        assert store(3).Status == 0x0000
        peer.send(RELEASE_RQ)
        assert peer.recv_pdu()[0] == 0x06
    session = closed_session(provider)
    assert [(item.request.message_id, item.kind, item.data) for item in session.stored] == [
        (1, "file", data), (3, "file", data)]
    assert session.aborted is False


# ---------------------------------------------------------------- misbehaving peers

@pytest.mark.parametrize("first_bytes,reason", [
    (b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n", 1),            # unrecognised PDU type
    (bytes([0x01, 0]) + struct.pack(">I", 2 << 20) + bytes(64), 6),  # 2 MiB A-ASSOCIATE-RQ
    (pdata(pdv(1, b"\0\0", command=True, last=True)), 2),       # P-DATA before association
    (bytes([0x01, 0]) + struct.pack(">I", 75) + struct.pack(">HH", 1, 0) + b"A" * 16 + b"B" * 16
     + bytes(32) + bytes([0x10, 0, 0xFF, 0xFF]) + b"1.2", 6),   # item overruns the RQ
], ids=["http", "huge-rq", "pdata-first", "malformed-rq"])
def test_garbage_before_association_gets_abort(ul_server, first_bytes, reason):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        peer.send(first_bytes)
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x07
        abort = decode_abort(raw)
        assert (abort.source, abort.reason_diagnostic) == (2, reason)
        peer.expect_eof()
    assert provider.infos == []
    assert_echo_ok(srv)


@pytest.mark.parametrize("stage", ["associate-rq", "p-data"])
def test_truncated_pdu_then_disconnect(ul_server, stage):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        if stage == "associate-rq":
            peer.send(associate_rq(called=AE_TITLE)[:40])
        else:
            _store_context(peer)
            peer.send(pdata(pdv(1, store_rq(1, "1.2.3"), command=True, last=True))[:25])
    if stage == "associate-rq":
        wait_for(lambda: srv.active_associations == 0)
        assert provider.infos == []
    else:
        session = closed_session(provider)
        assert session.aborted is True and session.stored == []
    assert_echo_ok(srv)


def test_pdata_for_unaccepted_context_is_aborted(ul_server):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        peer.send(pdata(pdv(5, store_rq(1, "1.2.3"), command=True, last=True)))
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x07
        abort = decode_abort(raw)
        assert (abort.source, abort.reason_diagnostic) == (2, 6)
        peer.expect_eof()
    session = closed_session(provider)
    assert session.aborted is True and session.stored == []
    assert_echo_ok(srv)


@pytest.mark.parametrize("how", ["a-abort", "disconnect"])
def test_partial_dataset_never_reaches_store(ul_server, tmp_path, how):
    srv, provider = ul_server
    make_instance(tmp_path / "a.dcm", rows=64, cols=64)
    data = dataset_bytes(tmp_path / "a.dcm")
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        peer.send(pdata(pdv(1, store_rq(1, "1.2.3"), command=True, last=True)))
        peer.send(pdata(pdv(1, data[: len(data) // 2], command=False, last=False)))
        if how == "a-abort":
            peer.send(ABORT_RQ)
    session = closed_session(provider)
    assert session.aborted is True
    assert session.stored == []
    assert_echo_ok(srv)


@pytest.mark.parametrize("pdu,reason", [
    (associate_rq(called=AE_TITLE), 2),                        # A-ASSOCIATE-RQ while associated
    (bytes([0x55, 0, 0, 0, 0, 2, 0, 0]), 1),                   # unknown PDU type
    (bytes([0x04, 0, 0xFF, 0xFF, 0xFF, 0xF0]), 6),             # absurd P-DATA length
    (pdata(pdv(1, b"", command=True, last=True))[:6] + struct.pack(">IBB", 1, 1, 3), 6),  # PDV < 2
], ids=["second-rq", "unknown-type", "huge-length", "short-pdv"])
def test_protocol_violations_get_provider_abort(ul_server, pdu, reason):
    srv, provider = ul_server
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        peer.send(pdu)
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x07
        abort = decode_abort(raw)
        assert (abort.source, abort.reason_diagnostic) == (2, reason)
        peer.expect_eof()
    assert closed_session(provider).aborted is True
    assert_echo_ok(srv)


def test_silent_association_is_aborted_after_idle_timeout(make_ul_server):
    srv, provider = make_ul_server(idle_timeout=0.3)
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        started = time.monotonic()
        pdu_type, raw = peer.recv_pdu()
        elapsed = time.monotonic() - started
        assert pdu_type == 0x07 and decode_abort(raw).source == 2
        assert 0.25 <= elapsed < 3.0
        peer.expect_eof()
    assert closed_session(provider).aborted is True
    assert_echo_ok(srv)


def test_connection_without_associate_rq_is_closed_after_acse_timeout(make_ul_server):
    srv, provider = make_ul_server(acse_timeout=0.3)
    with RawPeer(srv.port) as peer:
        started = time.monotonic()
        peer.expect_eof()
        assert 0.25 <= time.monotonic() - started < 3.0
    assert provider.infos == []
    assert_echo_ok(srv)


def test_a_trickled_associate_rq_is_closed_at_artim(make_ul_server):
    # One byte every 0.1 s never trips a per-read timeout of 0.5 s; ARTIM bounds the whole RQ.
    srv, provider = make_ul_server(acse_timeout=0.5)
    rq = associate_rq(called=AE_TITLE)
    with RawPeer(srv.port) as peer:
        started = time.monotonic()
        with pytest.raises(OSError):
            for byte in rq:
                peer.send(bytes([byte]))
                time.sleep(0.1)
                if _answered(peer.sock):
                    raise ConnectionResetError("closed by the server")
        assert time.monotonic() - started < 0.1 * len(rq) / 2
    assert provider.infos == []
    wait_for(lambda: srv.active_associations == 0)
    assert_echo_ok(srv)


def _answered(sock: socket.socket) -> bool:
    """The server sent something or closed (without reading it)."""
    return bool(select.select([sock], [], [], 0)[0])


def test_a_pdu_arriving_below_the_minimum_rate_is_aborted(make_ul_server, tmp_path):
    srv, provider = make_ul_server(idle_timeout=1.0, pdu_timeout=0.3, min_rate=1000)
    make_instance(tmp_path / "a.dcm")
    data = dataset_bytes(tmp_path / "a.dcm")[:1800]
    with RawPeer(srv.port) as peer:
        _store_context(peer)
        peer.send(pdata(pdv(1, store_rq(1, "1.2.3.1"), command=True, last=True)))
        pdu = pdata(pdv(1, data, command=False, last=True))  # allowed 0.3 s + 1.8 kB at 1 kB/s
        started = time.monotonic()
        with pytest.raises(OSError):
            for start in range(0, len(pdu), 10):  # 100 bytes/s, never idle for 1 s
                peer.send(pdu[start:start + 10])
                time.sleep(0.1)
                if _answered(peer.sock):
                    raise ConnectionAbortedError("the server answered")
        assert 2.0 <= time.monotonic() - started < 10.0  # not before its allowance, long before the PDU ends
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x07 and decode_abort(raw).source == 2
    session = closed_session(provider)
    assert session.aborted is True and session.stored == []
    assert_echo_ok(srv)


def test_reserved_slots_are_kept_for_trusted_peers(make_ul_server, caplog):
    srv, provider = make_ul_server(max_associations=3, reserved_associations=1,
                                   trusted_peer=lambda host: host == "127.0.0.1")
    strangers = [RawPeer(srv.port, source="127.0.0.2") for _ in range(2)]
    try:
        for peer in strangers:
            peer.associate(called=AE_TITLE)
        for _ in range(5):  # the reserved slot is not theirs, however often they try
            with RawPeer(srv.port, source="127.0.0.2") as extra:
                extra.send(associate_rq(called=AE_TITLE))
                pdu_type, raw = extra.recv_pdu()
                assert pdu_type == 0x03 and (decode_rj(raw).result, decode_rj(raw).source) == (2, 3)
        with RawPeer(srv.port) as pacs:  # from a registered host
            pacs.associate(called=AE_TITLE)
            with RawPeer(srv.port) as second:
                second.send(associate_rq(called=AE_TITLE))
                assert second.recv_pdu()[0] == 0x03  # every slot is taken now
            pacs.send(RELEASE_RQ)
            assert pacs.recv_pdu()[0] == 0x06
    finally:
        for peer in strangers:
            peer.close()
    wait_for(lambda: srv.active_associations == 0)
    busy = [r for r in caplog.records if "association slots are busy" in r.getMessage()]
    assert 1 <= len(busy) < 6  # logged, but not once per refused connection
    assert len(provider.sessions) == 3


# ---------------------------------------------------------------- server lifecycle

def test_shutdown_aborts_live_associations():
    provider = RecordingProvider()
    server = UpperLayerServer(provider, ae_title=AE_TITLE, host="127.0.0.1", port=0)
    server.start()
    port = server.port
    with RawPeer(port) as peer:
        _store_context(peer)
        started = time.monotonic()
        server.shutdown()
        assert time.monotonic() - started < 3.0
        pdu_type, raw = peer.recv_pdu()
        assert pdu_type == 0x07
        peer.expect_eof()
    assert closed_session(provider).aborted is True
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_shutdown_from_a_signal_handler_ends_serve_forever():
    # How the receiver process stops: SIGTERM handler -> shutdown() while the
    # main thread sits in serve_forever().
    srv = UpperLayerServer(RecordingProvider(), ae_title=AE_TITLE, host="127.0.0.1", port=0)
    port = srv.port
    echo_rc = []

    def client() -> None:
        echo_rc.append(echoscu(port, called=AE_TITLE).returncode)
        os.kill(os.getpid(), signal.SIGUSR1)

    watchdog = threading.Timer(10.0, srv.shutdown)  # so a regression fails instead of hanging
    previous = signal.signal(signal.SIGUSR1, lambda *_: srv.shutdown())
    try:
        started = time.monotonic()
        threading.Thread(target=client, daemon=True).start()
        watchdog.start()
        srv.serve_forever()
        elapsed = time.monotonic() - started
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert echo_rc == [0]
    assert elapsed < 5.0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_prebound_socket_and_servers_sharing_one_listener(make_ul_server):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))  # bound, not yet listening
    srv, provider = make_ul_server(sock=listener)
    assert srv.port == listener.getsockname()[1]
    assert_echo_ok(srv)

    # How the receivers of one instance share its port: one listening socket, several servers.
    shared = socket.create_server(("127.0.0.1", 0))
    first, first_provider = make_ul_server(sock=shared)
    second, second_provider = make_ul_server(sock=socket.socket(fileno=os.dup(shared.fileno())))
    assert second.port == first.port
    for _ in range(6):
        assert_echo_ok(first)
    assert len(first_provider.sessions) + len(second_provider.sessions) == 6


def test_build_response_decodes_with_pynetdicom():
    raw = build_response(0x8001, 513, 0xA900, sop_class=CT_IMAGE_STORAGE, sop_instance="1.2.3",
                         error_comment="odd")
    rsp = decode_command(raw)
    assert rsp.CommandGroupLength == len(raw) - 12
    assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8001, 513, 0xA900)
    assert rsp.CommandDataSetType == 0x0101
    assert rsp.AffectedSOPClassUID == CT_IMAGE_STORAGE and rsp.AffectedSOPInstanceUID == "1.2.3"
    assert rsp.ErrorComment == "odd"
    pending = decode_command(build_response(0x8020, 1, 0xFF00, sop_class=STUDY_ROOT_FIND,
                                            has_dataset=True))
    assert pending.CommandDataSetType != 0x0101 and "AffectedSOPInstanceUID" not in pending
