"""Identity data at rest: AES-GCM encryption and keyed lookup hashes.

Identity numbers, phone numbers and raw payloads that contain them are
stored encrypted with the data key; lookups go through an HMAC of the
normalised value under the hash key, so a patient's studies are found
without decrypting every row. Neither key is in the database: they come
from YINGYUN_DATA_KEY / YINGYUN_HASH_KEY, or, on a single node, from a key
file created in the data dir at first start. Lose the keys and the identity
data is lost with them.

What the database does hold is a keyed fingerprint of the pair
(`Keys.fingerprint`), so a process started with other keys than the ones
the data was written with (a shell without YINGYUN_DATA_KEY, another data
dir's key file) is refused instead of writing what nobody can read back.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE_NAME = "yingyun-keys.json"
ENV_DATA_KEY = "YINGYUN_DATA_KEY"
ENV_HASH_KEY = "YINGYUN_HASH_KEY"
_VERSION = b"\x01"  # leading byte of every ciphertext, so the format can change


class KeysUnavailable(RuntimeError):
    pass


def _decode_key(text: str, name: str) -> bytes:
    text = text.strip()
    raw: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raw = bytes.fromhex(text)
    else:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            raw = None
    if raw is None or len(raw) != 32:
        raise KeysUnavailable(f"{name} must be 32 bytes, as 64 hex digits or base64")
    return raw


@dataclass(frozen=True)
class Keys:
    data_key: bytes
    hash_key: bytes

    @classmethod
    def generate(cls) -> Keys:
        return cls(os.urandom(32), os.urandom(32))

    def to_json(self) -> str:
        return json.dumps(
            {
                ENV_DATA_KEY: base64.urlsafe_b64encode(self.data_key).decode(),
                ENV_HASH_KEY: base64.urlsafe_b64encode(self.hash_key).decode(),
            },
            indent=2,
        )

    def fingerprint(self) -> str:
        """Tells two key pairs apart without revealing either: an HMAC of a fixed
        label under each key ("data:hash", hex), so it is recomputed from the
        keys but gives nothing towards them."""
        data = hmac.digest(self.data_key, b"yingyun key fingerprint: data key", "sha256").hex()
        hashed = hmac.digest(self.hash_key, b"yingyun key fingerprint: hash key", "sha256").hex()
        return f"{data}:{hashed}"


def keys_in_environment(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(ENV_DATA_KEY) or env.get(ENV_HASH_KEY))


def load_keys(data_dir: Path | None, *, create: bool = False, environ: Mapping[str, str] | None = None) -> Keys:
    """Keys from the environment, else from the data dir's key file.

    `create`: make the key file when there is none (only a server's first start
    does: any other process with no keys is refused, never handed new ones). The
    data dir must exist: it is made, owner-only, by whoever may create it."""
    env = os.environ if environ is None else environ
    if keys_in_environment(env):
        if not (env.get(ENV_DATA_KEY) and env.get(ENV_HASH_KEY)):
            raise KeysUnavailable(f"set both {ENV_DATA_KEY} and {ENV_HASH_KEY}, or neither")
        return Keys(_decode_key(env[ENV_DATA_KEY], ENV_DATA_KEY), _decode_key(env[ENV_HASH_KEY], ENV_HASH_KEY))
    if data_dir is None:
        raise KeysUnavailable(f"no keys: set {ENV_DATA_KEY} and {ENV_HASH_KEY}")
    path = Path(data_dir) / KEY_FILE_NAME
    if not path.exists():
        if not create:
            raise KeysUnavailable(f"no key file at {path} (set {ENV_DATA_KEY} and {ENV_HASH_KEY}, or use the "
                                  "data dir the server created)")
        keys = Keys.generate()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(keys.to_json())
            f.flush()
            os.fsync(f.fileno())
        try:
            # link() fails if another process won the race: theirs is kept.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    data = json.loads(path.read_text())
    return Keys(_decode_key(data[ENV_DATA_KEY], ENV_DATA_KEY), _decode_key(data[ENV_HASH_KEY], ENV_HASH_KEY))


class Vault:
    """Encrypts identity fields and computes their lookup hashes."""

    def __init__(self, keys: Keys) -> None:
        self._aead = AESGCM(keys.data_key)
        self._hash_key = keys.hash_key

    # Overloaded so that a value known present comes back present: None in, None out.
    @overload
    def encrypt(self, plain: str | bytes) -> bytes: ...
    @overload
    def encrypt(self, plain: None) -> None: ...
    @overload
    def encrypt(self, plain: str | bytes | None) -> bytes | None: ...

    def encrypt(self, plain: str | bytes | None) -> bytes | None:
        if plain is None:
            return None
        data = plain.encode("utf-8") if isinstance(plain, str) else plain
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, data, None)

    @overload
    def decrypt_bytes(self, blob: bytes) -> bytes: ...
    @overload
    def decrypt_bytes(self, blob: None) -> None: ...
    @overload
    def decrypt_bytes(self, blob: bytes | None) -> bytes | None: ...

    def decrypt_bytes(self, blob: bytes | None) -> bytes | None:
        if blob is None:
            return None
        blob = bytes(blob)
        if blob[:1] != _VERSION:
            raise ValueError("unknown ciphertext version")
        return self._aead.decrypt(blob[1:13], blob[13:], None)

    @overload
    def decrypt(self, blob: bytes) -> str: ...
    @overload
    def decrypt(self, blob: None) -> None: ...
    @overload
    def decrypt(self, blob: bytes | None) -> str | None: ...

    def decrypt(self, blob: bytes | None) -> str | None:
        data = self.decrypt_bytes(blob)
        return None if data is None else data.decode("utf-8")

    def keyed_hash(self, kind: str, normalised: str) -> str:
        return hmac.digest(self._hash_key, f"{kind}:{normalised}".encode(), "sha256").hex()

    def id_card_hash(self, value: str | None) -> str | None:
        norm = normalise_id_card(value)
        return self.keyed_hash("idcard", norm) if norm else None

    def phone_hash(self, value: str | None) -> str | None:
        norm = normalise_phone(value)
        return self.keyed_hash("phone", norm) if norm else None


def normalise_id_card(value: str | None) -> str:
    # Chinese ID numbers end in a check character that may be x or X.
    return re.sub(r"\s+", "", value or "").upper()


def normalise_phone(value: str | None) -> str:
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits
