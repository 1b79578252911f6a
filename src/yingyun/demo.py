"""`serve --demo`: a demo union, hospital and partner on an empty data dir.

Nothing else ever seeds data. The demo token is kept in the data dir
(demo-credentials.json, mode 0600) so later starts can show it again.

The banner is a newcomer's first page: it says where the QR codes point
(and warns when no phone can reach that address), gives a signed request
that registers a study and fetches its QR link, says how the patient opens
it and how to let a PACS send images.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
from typing import TextIO
from urllib.parse import urlsplit

from .runtime import Runtime
from .settings import Settings

DEMO_UNION = "demo-union"
DEMO_HOSPITAL = "demo-hospital"
DEMO_PARTNER = "demo-partner"
CREDENTIALS_FILE = "demo-credentials.json"
DEMO_PHONE = "13800138000"
DEMO_STUDY = {"patientId": "P0001", "patientName": "张三丰", "patientSex": "M", "studyId": "S0001",
              "accessNumber": "A0001", "modality": "CT", "studyDate": "2026-11-26 09:30:00",
              "phoneNum": DEMO_PHONE, "idCardNum": "11010519491231002X", "studyDesc": "胸部CT平扫"}
DEMO_REPORT = {"reportNumber": "R0001", "studyId": "S0001", "accessNumber": "A0001",
               "imageDescription": "双肺纹理清晰，未见明显实质性病变。", "conclusion": "胸部CT平扫未见明显异常。",
               "reportTime": "2026-11-26 10:05:00", "reportDoctor": "李医生"}


def seed_demo(runtime: Runtime, out: TextIO = sys.stdout) -> dict[str, str] | None:
    path = runtime.settings.data_dir / CREDENTIALS_FILE
    t = runtime.tenancy
    creds: dict[str, str]
    if path.exists():
        creds = json.loads(path.read_text())
    elif t.list_hospitals() or t.list_partners():
        print("--demo: this data dir already holds tenants; nothing seeded.", file=out)
        return None
    else:
        t.add_union(union_id=DEMO_UNION, name="演示医联体 Demo Medical Union")
        t.add_hospital(hospital_id=DEMO_HOSPITAL, name="演示医院 Demo Hospital", union_id=DEMO_UNION)
        _, token = t.add_partner(app_id=DEMO_PARTNER, hospitals=[DEMO_HOSPITAL])
        assert token is not None  # a new partner given no token is issued one
        creds = {"unionId": DEMO_UNION, "hospitalId": DEMO_HOSPITAL, "appId": DEMO_PARTNER, "token": token}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)
    print(demo_banner(creds, runtime.settings), file=out, flush=True)
    return creds


def local_url(settings: Settings) -> str:
    """Where a shell on this machine reaches the HTTP port."""
    scheme = "https" if settings.tls_cert else "http"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"{scheme}://{host}:{settings.http_port}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _lan_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), if it has one."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_loopback else address


def demo_banner(creds: dict[str, str], settings: Settings) -> str:
    base = local_url(settings)
    study, report = json.dumps(DEMO_STUDY, ensure_ascii=False), json.dumps(DEMO_REPORT, ensure_ascii=False)
    public = settings.public_url
    if _is_loopback(public) and settings.host in ("0.0.0.0", "::", ""):
        scheme = "https" if settings.tls_cert else "http"
        suggestion = f"{scheme}://{_lan_address() or 'ADDRESS-PHONES-REACH'}:{settings.http_port}"
        qr_note = (f"QR codes point at {public}/h5/s/…, which only this machine can open, although the\n"
                   f"server listens on every interface: for phones, restart with\n"
                   f"  --public-url {suggestion}\n"
                   f"(an address the phones reach; behind a reverse proxy, its https:// URL).")
    else:
        qr_note = f"QR codes point at {public}/h5/s/… (set with --public-url)."
    if settings.verify_method == "sms":
        verify_note = "asks for a code sent by SMS to the study's phone number"
    else:
        verify_note = f"asks for the last four digits of the study's phone number ({DEMO_PHONE[-4:]} here)"
    return f"""
================ Yingyun demo tenant ================
medical union : {creds['unionId']}
hospital      : {creds['hospitalId']}
partner appId : {creds['appId']}
partner token : {creds['token']}

{qr_note}

1. Register a study and its report, and get its QR link (paste into a shell; the signature is valid
   for 300 s):

APP={creds['appId']}; TOKEN={creds['token']}; BASE={base}
TS=$(date +%s%3N)
SIG=$(printf '%s%s' "$APP" "$TS" | openssl dgst -sha256 -hmac "$TOKEN" | sed 's/^.*= //')
curl -s $BASE/ris/study/add -H 'Content-Type: application/json' \\
  -H "appId: $APP" -H "timestamp: $TS" -H "signature: $SIG" \\
  -d '{study}'
echo
curl -s $BASE/ris/report/add -H 'Content-Type: application/json' \
  -H "appId: $APP" -H "timestamp: $TS" -H "signature: $SIG" \
  -d '{report}'
echo
curl -s $BASE/ris/getStudyQR -H 'Content-Type: application/json' \\
  -H "appId: $APP" -H "timestamp: $TS" -H "signature: $SIG" -d '{{"studyId": "S0001"}}' \\
  | python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["data"]["qrUrl"] if r["code"] == 0 else r)'

2. The patient scans the QR code (the PNG is data.qrCode; the link above is what it encodes);
   the page {verify_note},
   then shows the report and the images.

3. Let a PACS send images: register its calling AE title and address,
     yingyun admin pacs add --ae-title PACS1 --host 10.1.2.3 --port 104 --hospital {creds['hospitalId']}
   and point it at AE title {settings.ae_title}, port {settings.dicom_port} on this machine. For a trial,
   restart with --accept-any-ae: any AE may send, into {creds['hospitalId']}.
======================================================
"""
