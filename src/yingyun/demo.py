"""`serve --demo`: a demo union, hospital and partner on an empty data dir.

Nothing else ever seeds data. The demo token is kept in the data dir
(demo-credentials.json, mode 0600) so later starts can show it again.
"""

from __future__ import annotations

import json
import os
import sys

from .runtime import Runtime

DEMO_UNION = "demo-union"
DEMO_HOSPITAL = "demo-hospital"
DEMO_PARTNER = "demo-partner"
CREDENTIALS_FILE = "demo-credentials.json"


def seed_demo(runtime: Runtime, out=sys.stdout) -> dict | None:
    path = runtime.settings.data_dir / CREDENTIALS_FILE
    t = runtime.tenancy
    if path.exists():
        creds = json.loads(path.read_text())
    elif t.list_hospitals() or t.list_partners():
        print("--demo: this data dir already holds tenants; nothing seeded.", file=out)
        return None
    else:
        t.add_union(union_id=DEMO_UNION, name="演示医联体 Demo Medical Union")
        t.add_hospital(hospital_id=DEMO_HOSPITAL, name="演示医院 Demo Hospital", union_id=DEMO_UNION)
        _, token = t.add_partner(app_id=DEMO_PARTNER, hospitals=[DEMO_HOSPITAL])
        creds = {"unionId": DEMO_UNION, "hospitalId": DEMO_HOSPITAL, "appId": DEMO_PARTNER, "token": token}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(creds, f)
    print(demo_banner(creds, runtime.settings.public_url), file=out, flush=True)
    return creds


def demo_banner(creds: dict, base: str) -> str:
    body = json.dumps(
        {"patientId": "P0001", "patientName": "张三丰", "patientSex": "M", "studyId": "S0001",
         "accessNumber": "A0001", "modality": "CT", "studyDate": "2026-11-26 09:30:00",
         "phoneNum": "13800138000", "idCardNum": "11010519491231002X", "studyDesc": "胸部CT平扫"},
        ensure_ascii=False,
    )
    return f"""
================ Yingyun demo tenant ================
medical union : {creds['unionId']}
hospital      : {creds['hospitalId']}
partner appId : {creds['appId']}
partner token : {creds['token']}

Signed request (paste into a shell; the signature is valid for 300 s):

APP={creds['appId']}; TOKEN={creds['token']}
TS=$(date +%s%3N)
SIG=$(printf '%s%s' "$APP" "$TS" | openssl dgst -sha256 -hmac "$TOKEN" | sed 's/^.*= //')
curl -s {base}/ris/study/add -H 'Content-Type: application/json' \\
  -H "appId: $APP" -H "timestamp: $TS" -H "signature: $SIG" \\
  -d '{body}'
curl -s {base}/ris/getStudyQR -H 'Content-Type: application/json' \\
  -H "appId: $APP" -H "timestamp: $TS" -H "signature: $SIG" -d '{{"studyId": "S0001"}}'
======================================================
"""
