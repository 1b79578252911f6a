"""Pure pieces of the cloud film: language choice, masking, PDF and zip writers, lock arithmetic,
the gate's refusals."""

from __future__ import annotations

import io
import zipfile

import pytest

from yingyun.cloud.patient import files, verify
from yingyun.cloud.patient.i18n import EN, ZH, pick_language
from yingyun.cloud.patient.links import LinkState, Resolved, check_password, hash_password
from yingyun.cloud.patient.pages import access
from yingyun.core import errors
from yingyun.cloud.patient.study import mask_name


@pytest.mark.parametrize("header, lang", [
    (None, "zh"), ("", "zh"), ("fr-FR,fr;q=0.9", "zh"), ("en-US,en;q=0.9", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"), ("en;q=0.5,zh;q=0.4", "en"), ("zh;q=0.5,en;q=0.9", "en"),
    ("de,en;q=0.3,zh;q=0.2", "en"), ("en;q=0", "zh"), ("en;q=abc,zh", "zh"),
])
def test_pick_language(header, lang):
    assert pick_language(header) == lang


def test_both_languages_have_every_word():
    assert set(ZH) == set(EN)


@pytest.mark.parametrize("name, masked", [
    ("张三丰", "张*丰"), ("张三", "张*"), ("欧阳娜娜", "欧**娜"), ("Zhang^San", "Z******n"),
    ("Zhang^Sanfeng=张^三丰", "张*丰"), ("", ""), (None, ""), ("李", "李"),
])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_zip_size_is_exact_and_archive_valid():
    blobs = {"a.jpg": b"x" * 1000, "目录/b.jpg": bytes(range(256)) * 7, "empty.txt": b""}
    members = [files.ZipMember(n, len(d), (lambda d=d: io.BytesIO(d))) for n, d in blobs.items()]
    data = b"".join(files.zip_stream(members))
    assert len(data) == files.zip_size(members)
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    assert {n: zf.read(n) for n in zf.namelist()} == blobs


def test_zip_stream_refuses_a_member_that_changed_size():
    members = [files.ZipMember("a", 5, lambda: b"123")]
    with pytest.raises(OSError):
        b"".join(files.zip_stream(members))


def test_password_hash_roundtrip():
    h = hash_password("秘密 pw")
    assert h.startswith("scrypt$") and "秘密" not in h
    assert check_password(h, "秘密 pw") and not check_password(h, "秘密 pW")
    assert not check_password(None, "x") and not check_password("garbage", "x")


def test_answer_matching():
    ch = verify.Challenge("phone4", expected="8000")
    assert verify.answer_matches(ch, " 8000 ") and not verify.answer_matches(ch, "80000")
    idc = verify.Challenge("id4", expected="002X")
    assert verify.answer_matches(idc, "002x")
    assert not verify.answer_matches(verify.Challenge("none"), "")


def test_form_tokens_are_bound_to_key_link_and_form():
    t = verify.form_token("k1", link_pk=1, form="verify")
    assert verify.check_form_token("k1", t, link_pk=1, form="verify")
    assert not verify.check_form_token("k2", t, link_pk=1, form="verify")
    assert not verify.check_form_token("k1", t, link_pk=2, form="verify")
    assert not verify.check_form_token("k1", t, link_pk=1, form="share")
    assert not verify.check_form_token("k1", None, link_pk=1, form="verify")


@pytest.mark.parametrize("state, kind, tree", [
    (LinkState.UNKNOWN, access.LinkGone, errors.Gone), (LinkState.REVOKED, access.LinkGone, errors.Gone),
    (LinkState.EXPIRED, access.LinkGone, errors.Gone), (LinkState.DELETED, access.LinkGone, errors.Gone),
    (LinkState.PENDING, access.LinkOnHold, errors.Unavailable),
    (LinkState.SUSPENDED, access.LinkOnHold, errors.Unavailable),
])
def test_the_gate_refuses_with_the_error_tree(state, kind, tree):
    exc = access.refusal(Resolved(state), page=True)
    assert type(exc) is kind and isinstance(exc, tree) and isinstance(exc, access.Refusal)
    assert exc.subject == "link" and exc.resolved.state is state and exc.page
    assert issubclass(access.NeedsVerification, errors.Unauthenticated)
