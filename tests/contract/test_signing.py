import base64
import hashlib
import hmac
import subprocess
import time

import pytest

from yingyun.contract import signing
from yingyun.contract.codes import Code
from yingyun.contract.envelope import ContractError
from yingyun.contract.identity import IdentityDecryptError, decrypt_field, encrypt_field

TOKEN = "0123456789abcdefghijklmnopqrstuv"


def test_signature_is_lowercase_hex_hmac_of_appid_plus_timestamp():
    expected = hmac.new(TOKEN.encode(), b"app1" + b"1700000000000", hashlib.sha256).hexdigest()
    assert signing.sign("app1", TOKEN, 1700000000000) == expected
    assert expected == expected.lower()


def test_verify_accepts_hex_either_case_and_base64():
    now = time.time()
    ts = str(int(now * 1000))
    digest = hmac.new(TOKEN.encode(), ("app1" + ts).encode(), hashlib.sha256).digest()
    for sig in (digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode()):
        signing.verify(app_id="app1", timestamp=ts, signature=sig, tokens=[TOKEN], now=now)


@pytest.mark.parametrize(
    "timestamp,signature,fragment",
    [
        (None, "x", "timestamp header missing"),
        ("abc", "x", "milliseconds"),
        ("1", "x", "out of window"),
        ("NOW", None, "signature header missing"),
        ("NOW", "zz", "not a hex or base64"),
        ("NOW", "00" * 32, "does not match"),
    ],
)
def test_verify_refuses_with_90002_naming_the_problem(timestamp, signature, fragment):
    now = time.time()
    ts = str(int(now * 1000)) if timestamp == "NOW" else timestamp
    with pytest.raises(ContractError) as e:
        signing.verify(app_id="app1", timestamp=ts, signature=signature, tokens=[TOKEN], now=now)
    assert e.value.code == Code.INVALID_SIGNATURE
    assert fragment in e.value.message


def test_replay_window_edges():
    now = 1_800_000_000.0
    inside = str(int((now - 299) * 1000))
    outside = str(int((now + 301) * 1000))
    signing.verify(app_id="a", timestamp=inside, signature=signing.sign("a", TOKEN, inside), tokens=[TOKEN], now=now)
    with pytest.raises(ContractError):
        signing.verify(app_id="a", timestamp=outside, signature=signing.sign("a", TOKEN, outside), tokens=[TOKEN],
                       now=now)


def test_any_live_token_verifies_during_rotation():
    now = time.time()
    ts = str(int(now * 1000))
    old, new = TOKEN, "v" * 32
    sig = signing.sign("a", old, ts)
    signing.verify(app_id="a", timestamp=ts, signature=sig, tokens=[new, old], now=now)
    with pytest.raises(ContractError):
        signing.verify(app_id="a", timestamp=ts, signature=sig, tokens=[new], now=now)


@pytest.mark.parametrize("bad", ["short", "x" * 33, "é" * 32, "a" * 31 + "\n"])
def test_tokens_must_be_32_ascii(bad):
    with pytest.raises(ValueError):
        signing.validate_token(bad)


def test_identity_field_matches_openssl_aes_256_ecb():
    plain = "13800138000"
    ours = encrypt_field(plain, TOKEN)
    theirs = subprocess.run(
        ["openssl", "enc", "-aes-256-ecb", "-K", TOKEN.encode().hex(), "-nosalt"],
        input=plain.encode(), capture_output=True, check=True,
    ).stdout.hex()
    assert ours == theirs and ours == ours.lower()
    assert decrypt_field(ours.upper(), TOKEN) == plain
    assert decrypt_field(encrypt_field("11010519491231002X", TOKEN), TOKEN) == "11010519491231002X"


@pytest.mark.parametrize("bad", ["zz", "00" * 15, "", encrypt_field("x", "w" * 32)])
def test_identity_field_that_does_not_decrypt(bad):
    with pytest.raises(IdentityDecryptError):
        decrypt_field(bad, TOKEN)
