"""Identity fields on the internet-hospital API (contract §1.4).

AES-256-ECB with PKCS#7 padding, the key being the partner's 32-character
token as ASCII bytes, ciphertext as hex (we emit lowercase, accept either).
ECB is the vendor's choice, not ours; it is used only on this wire.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class IdentityDecryptError(ValueError):
    pass


def _cipher(token: str) -> Cipher[modes.ECB]:
    key = token.encode("ascii")
    if len(key) != 32:
        raise ValueError("identity key must be 32 ASCII bytes")
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 - vendor contract


def encrypt_field(plain: str, token: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plain.encode("utf-8")) + padder.finalize()
    enc = _cipher(token).encryptor()
    return (enc.update(data) + enc.finalize()).hex()


def decrypt_field(cipher_hex: str, token: str) -> str:
    try:
        raw = bytes.fromhex(cipher_hex.strip())
    except ValueError as e:
        raise IdentityDecryptError("not hex") from e
    if not raw or len(raw) % 16:
        raise IdentityDecryptError("not a whole number of AES blocks")
    dec = _cipher(token).decryptor()
    padded = dec.update(raw) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        data = unpadder.update(padded) + unpadder.finalize()
        return data.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as e:
        raise IdentityDecryptError("does not decrypt with this partner's token") from e
