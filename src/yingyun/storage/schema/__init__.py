"""The index schema (SQLAlchemy Core), shared by SQLite and PostgreSQL: every table, in one package.

Every table of every domain is declared here, on one `metadata`, so that
importing `yingyun.storage.schema` is enough for Alembic (migrations/env.py)
and for the drift check (tests/storage/test_schema.py: the migrations build
exactly these tables, on both dialects). A domain imports its tables from
here; it declares none itself.

Times are Unix seconds (float) in UTC; hospital-local date-times from the
RIS are kept as the normalised text they arrived as ('yyyy-MM-dd HH:mm:ss').
Identity fields never appear in clear: `identity_enc` holds them encrypted
(core.crypto.Vault) and `*_hash` the keyed hashes used for lookups. Raw
payloads are kept encrypted too, since they carry the same identity fields.

| module             | tables                                                                    |
|--------------------|---------------------------------------------------------------------------|
| `base`             | the metadata and its naming convention; the column types `ID`, `UID`, `TEXT` |
| `tenancy`          | unions, hospitals, partners, partner_tokens, partner_grants, pacs         |
| `records`          | studies, study_versions, reports, report_versions, links                  |
| `dicom`            | dicom_studies, series, instances, superseded_instances, blob_journal, reconcile_* |
| `dicomweb`         | dicomweb_tokens, dicomweb_token_grants, and QIDO's indexes on dicom_studies |
| `film`             | link_guards, link_sessions, access_audit                                  |
| `phonecodes`       | phone_codes, phone_guards (SMS codes by phone and purpose)                |
| `patients`         | patient_accounts, patient_sessions, patient_members, member_scans (/h5/me) |
| `letterheads`      | hospital_letterheads (contact phone and logo of reports and error pages)  |
| `consultations`    | doctors, consultations, consultation_studies/_experts/_links              |
| `ratelimit`        | partner_rate_windows, partner_rate_limits                                 |
| `queue`            | jobs                                                                      |
| `sync`             | gateways, sync_applied, gateway_outbox, deployment                        |
| `organisation`     | departments, device_types, devices                                        |
| `staff`            | users, user_roles, staff_sessions, staff_audit                            |
| `retention`        | retention_rules, legal_holds, purge_tombstones                            |
| `integrity`        | blob_digests, scrub_state, backup_runs                                    |
| `hl7`              | hl7_senders, hl7_messages, hl7_merges                                     |
| `commitment`       | storage_commitments (Storage Commitment requests until answered)          |
| `delivery`         | report_downlink, ris_endpoints (final reports back to the hospital's RIS) |
| `heal`             | heal_peers, heal_studies (reconciliation that retrieves from the PACS)   |
| `stats`            | stats_daily, stats_days (the statistics' rollup), indexes by arrival time |
| `templates`        | body_parts, exam_items (report templates), kb_folders, kb_texts (phrases) |
| `reading`          | reading_routes, reading_reports, reading_revisions, reading_critical (remote reading) |
"""

from .base import ID, NAMING, TEXT, UID, metadata
from .commitment import storage_commitments
from .consultations import consultation_experts, consultation_links, consultation_studies, consultations, doctors
from .dicom import (
    blob_journal,
    dicom_studies,
    instances,
    reconcile_entries,
    reconcile_logs,
    series,
    superseded_instances,
)
from .dicomweb import dicomweb_token_grants, dicomweb_tokens
from .delivery import report_downlink, ris_endpoints
from .integrity import backup_runs, blob_digests, scrub_state
from .film import access_audit, link_guards, link_sessions
from .organisation import departments, device_types, devices
from .patients import member_scans, patient_accounts, patient_members, patient_sessions
from .phonecodes import phone_codes, phone_guards
from .letterheads import hospital_letterheads
from .hl7 import hl7_merges, hl7_messages, hl7_senders
from .heal import heal_peers, heal_studies
from .queue import jobs
from .ratelimit import rate_limits, rate_windows
from .retention import legal_holds, purge_tombstones, retention_rules
from .reading import reading_critical, reading_reports, reading_revisions, reading_routes
from .records import links, report_versions, reports, studies, study_versions
from .staff import staff_audit, staff_sessions, user_roles, users
from .stats import stats_daily, stats_days
from .sync import deployment, gateway_outbox, gateways, sync_applied
from .templates import (  # re-exported by alias, so __all__ (which every branch edits) need not change
    body_parts as body_parts,
    exam_items as exam_items,
    kb_folders as kb_folders,
    kb_texts as kb_texts,
)
from .tenancy import hospitals, pacs, partner_grants, partner_tokens, partners, unions

__all__ = [
    "ID", "NAMING", "TEXT", "UID", "access_audit", "backup_runs", "blob_digests", "blob_journal", "body_parts",
    "consultation_experts", "consultation_links", "consultation_studies", "consultations", "departments",
    "deployment", "device_types", "devices", "dicom_studies", "dicomweb_token_grants", "dicomweb_tokens", "doctors",
    "exam_items", "gateway_outbox", "gateways", "heal_peers", "heal_studies", "hl7_merges", "hl7_messages",
    "hl7_senders", "hospital_letterheads", "hospitals", "instances", "jobs", "kb_folders", "kb_texts", "legal_holds",
    "link_guards", "link_sessions", "links", "member_scans", "metadata", "pacs", "partner_grants", "partner_tokens",
    "partners", "patient_accounts", "patient_members", "patient_sessions", "phone_codes", "phone_guards",
    "purge_tombstones", "rate_limits", "rate_windows", "reading_critical", "reading_reports", "reading_revisions",
    "reading_routes", "reconcile_entries", "reconcile_logs", "report_downlink", "report_versions", "reports",
    "retention_rules", "ris_endpoints", "scrub_state", "series", "staff_audit", "staff_sessions", "stats_daily",
    "stats_days", "storage_commitments", "studies", "study_versions", "superseded_instances", "sync_applied",
    "unions", "user_roles", "users",
]
