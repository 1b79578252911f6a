"""Property-based fuzzing of what faces the network: the PDU and command-set parsers, the
association loop behind a real socket, and the dataset parser that every received C-STORE meets.

Properties:

* the parsers raise nothing but their own error (``ProtocolError``, ``InvalidInstance``) on
  random, truncated or corrupted input;
* a peer that sends random bytes, or a valid C-STORE cut short, never reaches ``store``, is
  answered with an A-ABORT (or a failure status first), and the server lives on: no internal
  error logged, a C-ECHO answered afterwards, every slot given back.

Deterministic for CI: ``derandomize=True`` (examples derived from the test, not a seed), a fixed
``max_examples``, no example database; the server's timeouts are short so an example that leaves
the server waiting costs a third of a second.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian
from pynetdicom.pdu import P_DATA_TF as P_DATA_TF_PDU

from yingyun.core.dicom import InvalidInstance, read_dataset_info, read_file_info
from yingyun.dicomnet.dimse import Command
from yingyun.dicomnet.pdu import ProtocolError, parse_associate_rq
from yingyun.dicomnet.server import UpperLayerServer
from yingyun.dicomnet.status import Category, category

from ..support.dicom_peers import (
    CT_IMAGE_STORAGE,
    IMPLICIT_LE,
    SCP_AE_TITLE,
    RawPeer,
    RecordingProvider,
    associate_rq,
    decode_command,
    echoscu,
    encode_dataset,
    make_instance,
    pdata,
    pdv,
    store_rq,
)

FAST = settings(max_examples=300, derandomize=True, database=None, deadline=None)
# Each example is a real association over loopback; some wait out the server's 0.3 s timeouts.
NETWORK = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SHORT = 0.3
A_ASSOCIATE_AC, A_ASSOCIATE_RJ, P_DATA_TF, A_RELEASE_RP, A_ABORT = 0x02, 0x03, 0x04, 0x06, 0x07


def samples() -> dict[str, bytes]:
    """A canned A-ASSOCIATE-RQ, a C-STORE-RQ command set and a small CT data set (pydicom-made)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        ds = make_instance(Path(folder) / "ct.dcm", rows=8, cols=8)
        part10 = (Path(folder) / "ct.dcm").read_bytes()
    del ds.file_meta
    return {
        "rq": associate_rq(called=SCP_AE_TITLE, contexts=[(1, CT_IMAGE_STORAGE, [IMPLICIT_LE]),
                                                          (3, "1.2.840.10008.1.1", [IMPLICIT_LE])]),
        "command": store_rq(1, ds.SOPInstanceUID),
        "dataset": encode_dataset(ds),
        "explicit": encode_dataset(ds, implicit=False),
        "part10": part10,
    }


SAMPLES = samples()


@st.composite
def _overwritten(draw: st.DrawFn, raw: bytes) -> bytes:
    out = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out[:draw(st.integers(1, len(out)))])


def corrupted(raw: bytes) -> st.SearchStrategy[bytes]:
    """`raw` cut short, or with a few bytes overwritten (and maybe cut short too)."""
    return st.one_of(st.integers(0, len(raw) - 1).map(lambda n: raw[:n]), _overwritten(raw))


# ------------------------------------------------------------------ the parsers


@FAST
@given(st.one_of(st.binary(max_size=400), corrupted(SAMPLES["rq"])))
def test_the_associate_rq_parser_raises_only_protocol_errors(raw: bytes) -> None:
    try:
        rq = parse_associate_rq(raw)
    except ProtocolError:
        return
    assert len(raw) >= 74 and all(cx.context_id < 256 for cx in rq.contexts)


@FAST
@given(st.one_of(st.binary(max_size=300), corrupted(SAMPLES["command"])))
def test_the_command_set_parser_raises_only_protocol_errors(raw: bytes) -> None:
    try:
        Command(raw)
    except ProtocolError:
        pass


@FAST
@given(st.sampled_from([(IMPLICIT_LE, "dataset"), (str(ExplicitVRLittleEndian), "explicit"),
                        (str(ExplicitVRBigEndian), "dataset"), (str(DeflatedExplicitVRLittleEndian), "dataset")]),
       st.data())
def test_the_dataset_parser_raises_only_invalid_instance(syntax: tuple[str, str], data: st.DataObject) -> None:
    ts, sample = syntax
    raw = SAMPLES[sample]
    if ts == DeflatedExplicitVRLittleEndian:
        deflate = zlib.compressobj(wbits=-15)
        raw = deflate.compress(SAMPLES["explicit"]) + deflate.flush()
    received = data.draw(st.one_of(st.binary(max_size=400), corrupted(raw)))
    try:
        read_dataset_info(received, ts, expected_sop_class_uid=CT_IMAGE_STORAGE)
    except InvalidInstance as exc:
        assert category(exc.status) == Category.FAILURE and exc.reason


@FAST
@given(corrupted(SAMPLES["part10"]))
def test_the_part10_parser_raises_only_invalid_instance(raw: bytes) -> None:
    try:
        read_file_info(raw)
    except InvalidInstance as exc:
        assert category(exc.status) == Category.FAILURE


# -------------------------------------------------------- a server behind a socket


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[tuple[UpperLayerServer, RecordingProvider, _Errors]]:
    errors = _Errors()
    logger = logging.getLogger("yingyun.dicom")
    logger.addHandler(errors)
    provider = RecordingProvider()
    server = UpperLayerServer(provider, ae_title=SCP_AE_TITLE, host="127.0.0.1", port=0, acse_timeout=SHORT,
                              idle_timeout=SHORT, pdu_timeout=SHORT, max_associations=4)
    server.start()
    try:
        yield server, provider, errors
        # The server lives on: it answers a real peer and every association gave its slot back.
        assert echoscu(server.port, called=SCP_AE_TITLE).returncode == 0
        assert server.active_associations == 0
        assert [r.getMessage() for r in errors.records] == []
    finally:
        server.shutdown()
        logger.removeHandler(errors)


def exchange(port: int, payload: bytes, *, associate: bool) -> list[tuple[int, bytes]]:
    """Associate (or not), send `payload`, keep the connection open and collect every PDU the
    server sends until it closes."""
    got: list[tuple[int, bytes]] = []
    with RawPeer(port, timeout=10) as peer:
        if associate:
            peer.send(SAMPLES["rq"])
            kind, ac = peer.recv_pdu()
            assert kind == A_ASSOCIATE_AC, ac
        try:
            peer.send(payload)
        except OSError:  # the server already aborted and closed
            pass
        while True:
            try:
                got.append(peer.recv_pdu())
            except (EOFError, ConnectionResetError):
                break
    return got


def store_responses(pdus: list[tuple[int, bytes]]) -> list[int]:
    """The statuses of the C-STORE-RSPs among the server's P-DATA-TF PDUs."""
    statuses = []
    for kind, raw in pdus:
        if kind != P_DATA_TF:
            continue
        pdu = P_DATA_TF_PDU()
        pdu.decode(raw)
        for item in pdu.presentation_data_value_items:
            if item.data[0] & 0x01:  # a command fragment (the server sends each command whole)
                command = decode_command(item.data[1:])
                if command.CommandField == 0x8001:
                    statuses.append(command.Status)
    return statuses


def assert_aborted_without_store(provider: RecordingProvider, pdus: list[tuple[int, bytes]],
                                 payload: bytes) -> None:
    session = provider.sessions[-1]
    assert session.closed.wait(10)
    assert session.stored == []
    assert all(category(s) == Category.FAILURE for s in store_responses(pdus))
    assert pdus, "the server closed without a word"
    last = pdus[-1][0]
    if last == A_RELEASE_RP:  # the random bytes held an A-RELEASE-RQ: an orderly end the peer asked for
        assert b"\x05\x00\x00\x00\x00\x04" in payload and session.aborted is False
    else:
        assert last == A_ABORT and session.aborted is True


def message(command: bytes, dataset: bytes, *, fragment: int = 0) -> bytes:
    """A C-STORE-RQ on context 1: the command in one PDV, the data set in PDVs of `fragment` bytes."""
    out = pdata(pdv(1, command, command=True, last=True))
    size = fragment or len(dataset)
    for start in range(0, len(dataset), size):
        out += pdata(pdv(1, dataset[start:start + size], command=False, last=start + size >= len(dataset)))
    return out


@NETWORK
@given(st.binary(min_size=1, max_size=200))
def test_random_bytes_after_association_end_in_an_abort(fuzzed_server, payload: bytes) -> None:
    server, provider, errors = fuzzed_server
    pdus = exchange(server.port, payload, associate=True)
    assert_aborted_without_store(provider, pdus, payload)
    assert errors.records == []


WHOLE = message(SAMPLES["command"], SAMPLES["dataset"], fragment=128)


@NETWORK
@given(st.integers(1, len(WHOLE) - 1))
def test_a_c_store_cut_short_never_reaches_store(fuzzed_server, cut: int) -> None:
    server, provider, errors = fuzzed_server
    pdus = exchange(server.port, WHOLE[:cut], associate=True)
    assert_aborted_without_store(provider, pdus, WHOLE[:cut])
    assert errors.records == []


@NETWORK
@given(st.one_of(st.binary(min_size=1, max_size=200),
                 st.integers(1, len(SAMPLES["rq"]) - 1).map(lambda n: SAMPLES["rq"][:n])))
def test_random_or_truncated_bytes_instead_of_an_associate_rq_never_reach_the_provider(fuzzed_server,
                                                                                     payload: bytes) -> None:
    server, provider, errors = fuzzed_server
    before = len(provider.infos)
    pdus = exchange(server.port, payload, associate=False)
    # Refused (A-ASSOCIATE-RJ), aborted, or closed once ARTIM ran out: never accepted.
    assert all(kind in (A_ASSOCIATE_RJ, A_ABORT) for kind, _ in pdus)
    assert len(provider.infos) == before
    assert errors.records == []


def test_the_sample_c_store_is_stored_whole(fuzzed_server) -> None:
    """The control: the uncut message does reach store, so the properties above are not vacuous."""
    server, provider, _ = fuzzed_server
    pdus = exchange(server.port, WHOLE + bytes([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]), associate=True)
    assert store_responses(pdus) == [0x0000] and pdus[-1][0] == A_RELEASE_RP
    session = provider.sessions[-1]
    assert session.closed.wait(10) and session.aborted is False
    assert [item.data for item in session.stored] == [SAMPLES["dataset"]]
