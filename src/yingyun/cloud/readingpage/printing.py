"""The hospital's copy of a study's final report as PDF (issue 15 item 7): `core/reportpdf`'s one layout.

The hospital copy is for the hospital's own file and the patient's hand, so
it carries the patient's full name and every number the hospital files it
by (patient id, accession number, inpatient and outpatient numbers), which
the patient pages' shared copies mask. The report is the study's current one
in the `reports` table: what the hospital's RIS sent, or what the reading
centre approved (written there by the reading core), the same text the
patient pages and the partner API show. The QR code is the study's own QR
link (archive/links: the exam card's, made now when none was printed yet),
so the paper opens the cloud film.

Printing is a patient-data access: it is recorded in the staff audit trail
(`report.print`, with the hospital and study, never a name) in the same
transaction that reads the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from ... import letterheads
from ...archive import links as link_store
from ...contract.gateway_api import CLINIC_NUM, INPATIENT_NUM
from ...core import bodyparts, reportpdf
from ...core.errors import Forbidden, NotFound
from ...core.links import study_url
from ...storage import schema as s
from ..patient import study as study_svc
from ..patient.i18n import Translator
from ..staff.audit import record_action
from ..staff.edge import CLINICIAN, Caller
from .context import ReadingPageContext
from .i18n import LANGS

PRINT_ACTION = "report.print"


@dataclass(frozen=True)
class Printed:
    pdf: bytes
    study_id: str
    report_number: str


def studies_of(conn: Connection, study_uid: str) -> list[Row[Any]]:
    """The live RIS records of `study_uid` (by the record's own UID, else by the images that name it)."""
    st, d = s.studies, s.dicom_studies
    rows = list(conn.execute(select(st).where(st.c.study_uid == study_uid, st.c.deleted.is_(False))
                             .order_by(st.c.hospital_id, st.c.pk)).all())
    if rows:
        return rows
    linked = select(d.c.ris_study_pk).where(d.c.study_uid == study_uid, d.c.ris_study_pk.is_not(None))
    return list(conn.execute(select(st).where(st.c.pk.in_(linked), st.c.deleted.is_(False))
                             .order_by(st.c.hospital_id, st.c.pk)).all())


def locate(conn: Connection, ctx: ReadingPageContext, caller: Caller, study_uid: str) -> Row[Any]:
    """The study `caller` may read under `study_uid`: 30008 when there is none, 30009 when not theirs."""
    rows = studies_of(conn, study_uid)
    if not rows:
        raise NotFound(f"no study {study_uid}", subject="study")
    if not ctx.gate.may_view(conn, caller, study_uid):
        raise Forbidden(f"study {study_uid} is not one user {caller.username} may read", subject="study")
    # One UID in several hospitals (a study sent on): the caller's own hospital's record first.
    reach = caller.hospital_ids(CLINICIAN)
    mine = [r for r in rows if reach is None or r.hospital_id in reach]
    return (mine or rows)[0]


def hospital_copy(conn: Connection, ctx: ReadingPageContext, caller: Caller, *, study_uid: str,
                  lang: str) -> Printed:
    """The PDF of the study's report (30003 while it has none), its printing audited in `conn`'s transaction."""
    study = locate(conn, ctx, caller, study_uid)
    rep = study_svc.latest_report(conn, study)
    if rep is None:
        raise NotFound(f"study {study_uid} has no report yet", subject="report")
    name = ctx.tenancy.hospitals().get(study.hospital_id, {}).get("name") or study.hospital_id
    head = letterheads.letterhead(conn, hospital_id=study.hospital_id, name=name)
    token = link_store.get_or_create_qr_token(conn, ctx.vault, hospital_id=study.hospital_id,
                                              study_id=study.study_id, created_by=caller.username)
    doc = document(study, rep, head, qr_url=study_url(ctx.public_url, token), lang=lang)
    pdf = reportpdf.render(doc)
    record_action(conn, username=caller.username, action=PRINT_ACTION, subject_kind="study",
                  subject_id=study.study_id, hospital_id=study.hospital_id, study_uid=study_uid,
                  detail={"reportNumber": rep.report_number})
    return Printed(pdf=pdf, study_id=study.study_id, report_number=rep.report_number)


def document(study: Row[Any], rep: Row[Any], head: reportpdf.Letterhead, *, qr_url: str,
             lang: str) -> reportpdf.ReportDocument:
    """The printed report in `lang`: the patient pages' labels, the hospital copy's own title and footer."""
    t = Translator(lang)
    own = LANGS.get(t.lang, LANGS["zh"])
    det = study_svc.details(study)
    sex = t(f"sex_{study.patient_sex}") if study.patient_sex in ("M", "F", "O") else ""
    age = ""
    if det.get("patientAge") not in (None, ""):
        unit = det.get("patientAgeUnit") if det.get("patientAgeUnit") in ("Y", "M", "D") else "Y"
        age = t(f"age_{unit}", n=det.get("patientAge"))
    modality, body_part, exam_item = study.modality or "", study.body_part or "", study.study_desc or ""
    if t.lang == "zh":
        exam_item = bodyparts.exam_name_zh(exam_item, modality=modality, body_part=body_part)
        body_part = bodyparts.body_part_zh(body_part)
        modality = bodyparts.modality_zh(modality)
    return reportpdf.ReportDocument(
        title=f"{t('report_title')}{own['pdf_copy']}", letterhead=head,
        patient=[(t("patient"), study_svc.display_name(study.patient_name)), (t("sex"), sex), (t("age"), age),
                 (t("patient_id"), study.patient_id or ""), (t("access_number"), study.access_number or ""),
                 (t("inpatient_num"), str(det.get(INPATIENT_NUM) or "")),
                 (t("clinic_num"), str(det.get(CLINIC_NUM) or ""))],
        exam=[(t("modality"), modality), (t("body_part"), body_part),
              (t("exam_dept"), str(det.get("examDept") or "")), (t("exam_time"), study.study_date or ""),
              (t("exam_item"), exam_item), (own["pdf_report_number"], rep.report_number or "")],
        sections=[(t("findings"), rep.image_description or ""), (t("conclusion"), rep.conclusion or "")],
        signatures=[(t("report_doctor"), rep.report_doctor or ""), (t("report_time"), rep.report_time or ""),
                    (t("audit_doctor"), rep.audit_doctor or ""), (t("audit_time"), rep.audit_time or "")],
        qr_url=qr_url, qr_caption=t("qr_caption"), contact_label=t("contact_phone"), footer=t("pdf_footer"))
