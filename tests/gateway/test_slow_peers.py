"""Slow DICOM peers cannot lock a registered PACS out (issue 12, item 3).

A slowloris on an unregistered address (127.0.0.2) keeps 64 connections
open, sending one byte every quarter second and reconnecting whenever the
receiver closes one, while the registered PACS (127.0.0.1) stores study
after study with dcmtk's storescu. The receiver is the gateway's own
(build_receiver over the archive), with a short ARTIM so the test is brief.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time

from sqlalchemy import func, select as sql_select

from yingyun.gateway.receiver import build_receiver
from yingyun.storage import schema as s

from ..support.dicom_data import StudySpec, make_study
from ..support.dicom_peers import echoscu, run_dcmtk


class Slowloris:
    def __init__(self, port: int, *, connections: int = 64, source: str = "127.0.0.2", interval: float = 0.25) -> None:
        self.port, self.source, self.interval = port, source, interval
        self.connections = connections
        self.closed_by_server = 0
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _connect(self) -> socket.socket | None:
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=1, source_address=(self.source, 0))
        except OSError:
            return None

    def _run(self) -> None:
        socks: list[socket.socket | None] = [self._connect() for _ in range(self.connections)]
        while not self._stop.is_set():
            for i, sock in enumerate(socks):
                if sock is None:
                    socks[i] = self._connect()
                    continue
                try:
                    # Anything from the server (an A-ASSOCIATE-RJ, EOF) means it gave up on us: start over.
                    if select.select([sock], [], [], 0)[0]:
                        raise ConnectionResetError
                    sock.send(b"\x01")  # the first byte of an A-ASSOCIATE-RQ, again and again
                    self.bytes_sent += 1
                except OSError:
                    sock.close()
                    self.closed_by_server += 1
                    socks[i] = self._connect()
            self._stop.wait(self.interval)
        for sock in socks:
            if sock is not None:
                sock.close()

    def __enter__(self) -> Slowloris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_registered_pacs_keeps_storing_while_a_slowloris_holds_connections(runtime, tenant, tmp_path, caplog):
    runtime.tenancy.add_pacs(ae_title="PACS1", host="127.0.0.1", port=104, hospital_id="h1")
    settings = runtime.settings
    settings.host = "0.0.0.0"
    settings.dicom_artim_s = 1.0
    settings.max_associations = 8  # 2 of them kept for registered PACS hosts
    server = build_receiver(runtime, port=0)
    server.start()
    caplog.set_level(logging.INFO, logger="yingyun.dicom")
    studies = [make_study(tmp_path / f"s{i}", StudySpec(accession=f"A{i}"), series=1, per_series=3) for i in range(8)]
    try:
        with Slowloris(server.port) as attack:
            time.sleep(1.5)  # every slot a stranger may take is taken
            for files in studies:
                r = run_dcmtk("storescu", "-aet", "PACS1", "-aec", "YINGYUN", "127.0.0.1", str(server.port),
                              *map(str, files), timeout=60)
                assert r.returncode == 0 and "E:" not in r.stdout + r.stderr, r.stdout + r.stderr
                assert echoscu(server.port, called="YINGYUN", calling="PACS1").returncode == 0
            time.sleep(1.5)
        assert attack.bytes_sent > 100  # it did trickle, the whole time
        assert attack.closed_by_server >= 64  # ...and its connections were closed at ARTIM, not kept
    finally:
        server.shutdown()
    with runtime.db.read() as conn:
        assert conn.execute(sql_select(func.count()).select_from(s.instances)).scalar() == 8 * 3
    artim = [r for r in caplog.records if "no complete A-ASSOCIATE-RQ" in r.getMessage()]
    assert artim, "the refusals were not logged"
    assert len(artim) < attack.closed_by_server / 4  # ...but not one line per connection
    assert all("PACS1" not in r.getMessage() for r in artim)
