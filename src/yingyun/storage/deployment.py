"""Facts every process of one deployment must agree on, kept in its database.

* **The keys.** The identity data is written under one pair of keys, which
  the database never holds; it holds their keyed fingerprint
  (`core.crypto.Keys.fingerprint`). The first process to open the database
  with keys records it, every later one compares, so a process holding
  other keys (a shell without YINGYUN_DATA_KEY, another data dir's key file)
  is refused before it writes anything nobody can decrypt. A database that
  already holds encrypted data when the fingerprint is first recorded (one
  written before fingerprints existed) is checked against that data first:
  its ciphertext must open and its lookup hashes must come out again.
* **Where the blobs are.** Each server start records its blob store, so a
  `yingyun import` run from a shell stores where the server reads.
* **Its role.** Each server start records it (serve, gateway, cloud), so an
  admin command on a gateway's data dir queues for the cloud what it changes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from sqlalchemy import Connection, select, update

from ..core.crypto import Keys, Vault
from .db import Database
from .schema import deployment, gateways, partner_tokens, studies
from .upsert import insert_ignore

KEY_FINGERPRINT = "key_fingerprint"
BLOB_STORE = "blob_store"
ROLE = "role"


class KeysMismatch(Exception):
    """The keys this process holds are not the ones the database's data is written with."""


@dataclass(frozen=True)
class Mismatch:
    data_key: bool
    hash_key: bool

    def describe(self) -> str:
        which = [name for name, differs in (("data key", self.data_key), ("hash key", self.hash_key)) if differs]
        return " and ".join(which) + (" differ" if len(which) > 1 else " differs")


def fact(conn: Connection, name: str) -> str | None:
    return conn.execute(select(deployment.c.value).where(deployment.c.name == name)).scalar_one_or_none()


def record_once(db: Database, name: str, value: str) -> str:
    """Record `value` unless a value is recorded already; returns the one that stands.

    Never fails on a concurrent insert: two servers starting on one database both
    record at once, and PostgreSQL would log the loser's duplicate-key error."""
    with db.write() as conn:
        insert_ignore(conn, deployment, {"name": name, "value": value, "recorded_at": time.time()}, keys=["name"])
    with db.read() as conn:
        recorded = fact(conn, name)
    assert recorded is not None
    return recorded


def record(db: Database, name: str, value: str) -> str | None:
    """Record `value`, replacing what was there; returns the previous value."""
    with db.write() as conn:
        previous = fact(conn, name)
        row = {"name": name, "value": value, "recorded_at": time.time()}
        if previous is None and insert_ignore(conn, deployment, row, keys=["name"]).rowcount == 1:
            return None
        if previous != value:  # there, or inserted by another process meanwhile
            conn.execute(update(deployment).where(deployment.c.name == name).values(value=value,
                                                                                  recorded_at=row["recorded_at"]))
    return previous


def check_keys(db: Database, keys: Keys) -> None:
    """Refuse (KeysMismatch) keys other than the database's; record them if it has none yet."""
    mine = keys.fingerprint()
    with db.read() as conn:
        recorded = fact(conn, KEY_FINGERPRINT)
        if recorded is None:
            found = _against_existing_data(conn, Vault(keys))
            if found is not None:
                raise KeysMismatch(found.describe())
    if recorded is None:
        recorded = record_once(db, KEY_FINGERPRINT, mine)
    if recorded != mine:
        data, _, hashed = recorded.partition(":")
        my_data, _, my_hash = mine.partition(":")
        raise KeysMismatch(Mismatch(data != my_data, hashed != my_hash).describe())


def _against_existing_data(conn: Connection, vault: Vault) -> Mismatch | None:
    """Keys checked against data already written (a database from before
    fingerprints): one ciphertext must decrypt, one identity must hash to its
    stored lookup hash. None when they fit or there is nothing to check."""
    samples = [conn.execute(select(col).where(col.is_not(None)).limit(1)).scalar_one_or_none()
               for col in (partner_tokens.c.token_enc, gateways.c.key_enc, studies.c.identity_enc)]
    sample = next((s for s in samples if s is not None), None)
    if sample is None:
        return None
    try:
        vault.decrypt_bytes(sample)
    except (InvalidTag, ValueError):
        return Mismatch(data_key=True, hash_key=False)  # the hash key cannot be checked without the data key
    st = studies.c
    row = conn.execute(select(st.identity_enc, st.id_card_hash, st.phone_hash)
                       .where(st.identity_enc.is_not(None),
                              (st.id_card_hash.is_not(None)) | (st.phone_hash.is_not(None)))
                       .limit(1)).first()
    if row is None:
        return None
    identity = json.loads(vault.decrypt(row.identity_enc) or "{}")
    values = [v for v in identity.values() if isinstance(v, str)]
    hashes = {vault.id_card_hash(v) for v in values} | {vault.phone_hash(v) for v in values}
    if (row.id_card_hash is not None and row.id_card_hash in hashes) or \
            (row.phone_hash is not None and row.phone_hash in hashes):
        return None
    return Mismatch(data_key=False, hash_key=True)
