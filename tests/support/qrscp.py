"""dcmtk's dcmqrscp as the hospital's PACS: a query/retrieve archive of its own, configured per test."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from .net import free_port

DCMQRSCP = "/usr/bin/dcmqrscp"


class Dcmqrscp:
    """dcmqrscp answering as `ae_title`, knowing the move destinations `peers` (AE title -> (host, port))."""

    def __init__(self, folder: Path, *, ae_title: str = "PACS", peers: dict[str, tuple[str, int]] | None = None
                 ) -> None:
        self.folder = folder
        self.ae_title = ae_title
        self.port = free_port()
        self.storage = folder / "db"
        self.storage.mkdir(parents=True, exist_ok=True)
        hosts = "\n".join(f"peer{i} = ({ae}, {host}, {port})" for i, (ae, (host, port)) in
                          enumerate(sorted((peers or {}).items())))
        self.config = folder / "dcmqrscp.cfg"
        self.config.write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 65536\nMaxAssociations = 16\n\n"
            f"HostTable BEGIN\n{hosts}\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
            f"AETable BEGIN\n{ae_title} {self.storage} RW (10000, 4096mb) ANY\nAETable END\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "dcmqrscp.log"

    def start(self) -> Dcmqrscp:
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - held for the process's life, closed in stop()
        self.proc = subprocess.Popen([DCMQRSCP, "-c", str(self.config), str(self.port)], stdout=self._log_file,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if subprocess.run(["/usr/bin/echoscu", "-aec", self.ae_title, "127.0.0.1", str(self.port)],
                              capture_output=True, timeout=10).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"dcmqrscp did not start: {self.log.read_text(errors='replace')}")

    def store(self, *paths: os.PathLike[str] | str) -> None:
        """Give the PACS these files (storescu into it, as a modality would)."""
        out = subprocess.run(["/usr/bin/storescu", "-aet", "MODALITY", "-aec", self.ae_title, "127.0.0.1",
                              str(self.port), *map(str, paths)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr

    def lose_file(self, sop_uid: str) -> None:
        """Delete the file of one instance behind the PACS's back: it still lists it, and cannot send it."""
        from pydicom import dcmread

        for path in self.storage.glob("*.dcm"):
            if dcmread(path, stop_before_pixels=True).SOPInstanceUID == sop_uid:
                path.unlink()
                return
        raise AssertionError("no such instance in the PACS")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self._log_file.close()
