"""Helpers for talking to DICOM servers in tests: dcmtk tools, pynetdicom, raw sockets.

Everything here is independent of yingyun's own codecs on purpose: requests
are built and responses decoded with pydicom/pynetdicom so that a bug in our
hand-written encoders cannot hide behind the same bug in the test.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import dsutils
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

# Absolute paths: pip's pynetdicom installs python apps with the same names.
DCMTK_BIN = Path("/usr/bin")
TEST_UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's root, fine for test data
SCP_AE_TITLE = "YINGYUN"  # what test servers answer to


# ------------------------------------------------------------------ dcmtk

def run_dcmtk(tool: str, *args: str, timeout: float = 30.0, cwd: str | os.PathLike | None = None
              ) -> subprocess.CompletedProcess:
    """Run a dcmtk tool with Nagle off (see bench-anchors: 22 inst/s otherwise)."""
    env = dict(os.environ, TCP_NODELAY="1")
    return subprocess.run([str(DCMTK_BIN / tool), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def echoscu(port: int, *, called: str, calling: str = "ECHOSCU") -> subprocess.CompletedProcess:
    return run_dcmtk("echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port))


def normalise_like_dcmtk(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Rewrite a file the way dcmtk puts a dataset on the wire.

    storescu re-encodes what it sends: no group lengths, no trailing padding,
    explicit item/sequence lengths.  After this the file's dataset bytes *are*
    the wire bytes, so "store() got exactly the file's dataset" is testable.
    """
    proc = run_dcmtk("dcmconv", "-g", "+e", "-p", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    return Path(dst)


# ------------------------------------------------------------------ files

def dataset_bytes(path: str | os.PathLike) -> bytes:
    """Everything after the file meta group (the dataset exactly as stored)."""
    raw = Path(path).read_bytes()
    assert raw[128:132] == b"DICM", "not a DICOM Part 10 file"
    pos = 132
    while struct.unpack_from("<H", raw, pos)[0] == 0x0002:
        vr = raw[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            pos += 12 + struct.unpack_from("<I", raw, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", raw, pos + 6)[0]
    return raw[pos:]


def make_instance(path: str | os.PathLike, *, index: int = 0, rows: int = 32, cols: int = 32,
                  sop_class: str = "1.2.840.10008.5.1.4.1.1.2", transfer_syntax: str = ExplicitVRLittleEndian,
                  study_uid: str | None = None, series_uid: str | None = None) -> Dataset:
    """Write a small synthetic image and return its dataset."""
    rng = np.random.default_rng(index)
    meta = FileMetaDataset()
    sop_uid = generate_uid(prefix=TEST_UID_ROOT)
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid(prefix=TEST_UID_ROOT)
    ds.SeriesInstanceUID = series_uid or generate_uid(prefix=TEST_UID_ROOT)
    ds.PatientName = "Test^Patient"
    ds.PatientID = "TEST0001"
    ds.Modality = "CT"
    ds.InstanceNumber = index + 1
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = rng.integers(-1000, 2000, size=(rows, cols), dtype=np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


# ------------------------------------------------------------------ recording provider

@dataclass
class StoredItem:
    request: Any
    data: bytes
    kind: str  # "memory" or "file"


@dataclass
class RecordingSession:
    info: Any
    matches: list[Dataset] = field(default_factory=list)
    store_status: int = 0x0000
    store_error: Exception | None = None
    stored: list[StoredItem] = field(default_factory=list)
    finds: list[tuple[str, Dataset]] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    aborted: bool | None = None
    find_hook: Any = None  # called after each yielded match (cancel tests)
    find_error: Exception | None = None
    store_hook: Any = None
    find_exhausted: bool = False
    find_closed: threading.Event = field(default_factory=threading.Event)

    def store(self, req, data) -> int:
        if hasattr(data, "read"):
            self.stored.append(StoredItem(req, data.read(), "file"))
        else:
            self.stored.append(StoredItem(req, bytes(data), "memory"))
        if self.store_hook is not None:
            self.store_hook(req, data)
        if self.store_error is not None:
            raise self.store_error
        return self.store_status

    def find(self, sop_class_uid: str, identifier: Dataset) -> Iterable[Dataset]:
        self.finds.append((sop_class_uid, identifier))
        if self.find_error is not None:
            raise self.find_error
        try:
            for i, match in enumerate(self.matches):
                yield match
                if self.find_hook is not None:
                    self.find_hook(i)
            self.find_exhausted = True
        finally:
            self.find_closed.set()

    def close(self, *, aborted: bool) -> None:
        assert not self.closed.is_set(), "close() called twice"
        self.aborted = aborted
        self.closed.set()


class RecordingProvider:
    """ServiceProvider that accepts known calling AEs and records its sessions."""

    def __init__(self, *, allowed_calling: set[str] | None = None, **session_kwargs: Any) -> None:
        self.allowed_calling = allowed_calling
        self.session_kwargs = session_kwargs
        self.sessions: list[RecordingSession] = []
        self.infos: list[Any] = []
        self._lock = threading.Lock()

    def associate(self, info):
        from yingyun.dicomnet.acse import Rejected

        with self._lock:
            self.infos.append(info)
        if self.allowed_calling is not None and info.calling_ae not in self.allowed_calling:
            raise Rejected("unknown calling AE", result=1, source=1, diagnostic=3)
        session = RecordingSession(info, **self.session_kwargs)
        with self._lock:
            self.sessions.append(session)
        return session

    def last(self) -> RecordingSession:
        assert self.sessions, "no association was accepted"
        return self.sessions[-1]


# ------------------------------------------------------------------ raw peer

VERIFICATION = "1.2.840.10008.1.1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT_LE = str(ImplicitVRLittleEndian)


def associate_rq(*, called: str, calling: str = "RAWPEER",
                 contexts: Iterable[tuple[int, str, list[str]]] = ((1, VERIFICATION, [IMPLICIT_LE]),),
                 max_pdu: int = 16384, roles: Iterable[tuple[str, bool, bool]] = (),
                 async_window: tuple[int, int] | None = None,
                 user_identity: tuple[int, bytes, bool] | None = None,
                 application_context: str = "1.2.840.10008.3.1.1.1") -> bytes:
    """Encode an A-ASSOCIATE-RQ with pynetdicom's encoder."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = application_context
    primitive.calling_ae_title = calling
    primitive.called_ae_title = called
    for cid, abstract, syntaxes in contexts:
        cx = PresentationContext()
        cx.context_id = cid
        cx.abstract_syntax = abstract
        cx.transfer_syntax = syntaxes
        primitive.presentation_context_definition_list.append(cx)
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = max_pdu
    impl = ImplementationClassUIDNotification()
    impl.implementation_class_uid = "1.2.826.0.1.3680043.8.498.1"
    user = [max_length, impl]
    for uid, scu, scp in roles:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = uid
        role.scu_role = scu
        role.scp_role = scp
        user.append(role)
    if async_window is not None:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked, window.maximum_number_operations_performed = async_window
        user.append(window)
    if user_identity is not None:
        identity = UserIdentityNegotiation()
        identity.user_identity_type, identity.primary_field, identity.positive_response_requested = user_identity
        user.append(identity)
    primitive.user_information = user
    return A_ASSOCIATE_RQ(primitive).encode()


def command_set(**elements: Any) -> bytes:
    """Encode a DIMSE command set (implicit VR LE, with group length) using pydicom."""
    ds = Dataset()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    body = _encode(ds, implicit=True, little=True)
    length = Dataset()
    length.CommandGroupLength = len(body)
    return _encode(length, implicit=True, little=True) + body


def _encode(ds: Dataset, *, implicit: bool, little: bool) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


def encode_dataset(ds: Dataset, *, implicit: bool = True, little: bool = True) -> bytes:
    return _encode(ds, implicit=implicit, little=little)


def pdv(context_id: int, payload: bytes, *, command: bool, last: bool) -> bytes:
    return struct.pack(">IBB", len(payload) + 2, context_id, (1 if command else 0) | (2 if last else 0)) + payload


def pdata(*pdvs: bytes) -> bytes:
    body = b"".join(pdvs)
    return struct.pack(">BxI", 0x04, len(body)) + body


def store_rq(message_id: int, sop_instance: str, *,
             sop_class: str = CT_IMAGE_STORAGE) -> bytes:
    return command_set(AffectedSOPClassUID=sop_class, CommandField=0x0001, MessageID=message_id,
                       Priority=0, CommandDataSetType=0x0000, AffectedSOPInstanceUID=sop_instance)


RELEASE_RQ = bytes([0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0])
ABORT_RQ = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0, 0])


class RawPeer:
    """A scripted, possibly misbehaving, DICOM peer on a plain socket."""

    def __init__(self, port: int, timeout: float = 5.0, *, source: str | None = None) -> None:
        # `source`: another loopback address (127.0.0.2...) to connect from, e.g. an unregistered host.
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pdu_lengths: list[int] = []  # PDU length field of every PDU received

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError(f"connection closed after {len(out)} of {n} bytes")
            out += chunk
        return bytes(out)

    def recv_pdu(self) -> tuple[int, bytes]:
        """Return (pdu_type, whole PDU including header)."""
        header = self._exact(6)
        length = struct.unpack(">I", header[2:])[0]
        self.pdu_lengths.append(length)
        return header[0], header + self._exact(length)

    def expect_eof(self) -> None:
        """The server must close: EOF (or reset) after any remaining bytes."""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return
            if not chunk:
                return

    def associate(self, **kwargs: Any) -> A_ASSOCIATE_AC:
        self.send(associate_rq(**kwargs))
        pdu_type, raw = self.recv_pdu()
        assert pdu_type == 0x02, f"expected A-ASSOCIATE-AC, got PDU type {pdu_type:#x}: {raw!r}"
        ac = A_ASSOCIATE_AC()
        ac.decode(raw)
        return ac

    def recv_message(self) -> tuple[int, Dataset, bytes | None]:
        """Reassemble one DIMSE message: (context id, command Dataset, data bytes or None)."""
        command, data = bytearray(), bytearray()
        context_id, want_data = None, None
        while True:
            pdu_type, raw = self.recv_pdu()
            assert pdu_type == 0x04, f"expected P-DATA-TF, got PDU type {pdu_type:#x}: {raw!r}"
            pdu = P_DATA_TF()
            pdu.decode(raw)
            for item in pdu.presentation_data_value_items:
                cid, value = item.context_id, item.presentation_data_value
                context_id = cid
                control, payload = value[0], value[1:]
                if control & 1:
                    command += payload
                    if control & 2:
                        cmd = decode_command(bytes(command))
                        want_data = cmd.CommandDataSetType != 0x0101
                        if not want_data:
                            return cid, cmd, None
                else:
                    data += payload
                    if control & 2:
                        return cid, decode_command(bytes(command)), bytes(data)
            assert context_id is not None


def decode_command(raw: bytes) -> Dataset:
    return dsutils.decode(BytesIO(raw), True, True)


def decode_rj(raw: bytes) -> A_ASSOCIATE_RJ:
    pdu = A_ASSOCIATE_RJ()
    pdu.decode(raw)
    return pdu


def decode_abort(raw: bytes) -> A_ABORT_RQ:
    pdu = A_ABORT_RQ()
    pdu.decode(raw)
    return pdu


# ------------------------------------------------------------------ pynetdicom SCU

def pynetdicom_associate(port: int, *, called: str, contexts: Iterable[tuple[str, list[str]]],
                         calling: str = "PYNETDICOM", max_pdu: int = 16382):
    """Associate with pynetdicom and switch Nagle off (it never does)."""
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.maximum_pdu_size = max_pdu
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, "pynetdicom could not associate"
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _keep_reactor_off_responses(assoc)
    return assoc


def _keep_reactor_off_responses(assoc) -> None:
    """Work around pynetdicom's requestor race (pydicom/pynetdicom#875).

    The association's reactor thread polls the DIMSE queue for incoming
    *requests*; its pause handshake with send_c_*() is racy, so with a fast
    peer on a loaded machine it sometimes takes a *response* off the queue,
    logs "Received unexpected C-STORE service message", drops it, and the SCU
    times out.  Our SCU associations never receive requests, so the reactor
    thread is simply kept away from the queue.
    """
    original = assoc.dimse.get_msg

    def get_msg(block: bool = False):
        if threading.current_thread() is assoc:
            return None, None
        return original(block)

    assoc.dimse.get_msg = get_msg
