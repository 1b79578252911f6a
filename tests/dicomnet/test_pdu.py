"""The PDU and DIMSE codecs over canned bytes (pynetdicom's encoded PDU and DIMSE items).

The expected bytes and values are pynetdicom's (``pynetdicom/tests/encoded_pdu_items.py`` and
``encoded_dimse_msg.py``, shipped in the pinned package, each with the values it encodes written
beside it); what our encoders produce is decoded with pynetdicom's PDU classes, never with the
module under test.
"""

from __future__ import annotations

import pytest
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.tests import encoded_dimse_msg as dimse_items
from pynetdicom.tests import encoded_pdu_items as pdu_items

from yingyun.dicomnet.acse import STORE, negotiate_context, service_of
from yingyun.dicomnet.dimse import C_ECHO_RQ, C_FIND_RQ, C_STORE_RQ, Command, build_response
from yingyun.dicomnet.pdu import (
    RELEASE_RP,
    ProtocolError,
    abort_pdu,
    encode_associate_ac,
    parse_associate_rq,
    pdata_pdus,
    reject_pdu,
)
from yingyun.dicomnet.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
PYNETDICOM_090 = "1.2.826.0.1.3680043.9.3811.0.9.0"


def decode_ac(raw: bytes) -> A_ASSOCIATE_AC:
    pdu = A_ASSOCIATE_AC()
    pdu.decode(raw)
    return pdu


# ---------------------------------------------------------------- A-ASSOCIATE-RQ


def test_a_plain_associate_rq() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq)
    assert (rq.called_ae, rq.calling_ae, rq.protocol_version) == ("ANY-SCP", "ECHOSCU", 1)
    assert rq.application_context == "1.2.840.10008.3.1.1.1"
    assert [(cx.context_id, cx.abstract_syntax, cx.transfer_syntaxes) for cx in rq.contexts] == [
        (1, VERIFICATION, [ImplicitVRLittleEndian])]
    assert (rq.peer_max_pdu, rq.implementation_uid) == (16382, PYNETDICOM_090)
    assert not rq.async_ops_proposed and rq.roles == {}


def test_an_associate_rq_with_user_identity_and_async_window() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq_user_async)
    assert rq.async_ops_proposed  # answered 1/1; the identity is not answered (PS3.7 D.3.3.7)
    assert [cx.abstract_syntax for cx in rq.contexts] == [VERIFICATION]


def test_an_associate_rq_with_role_selection() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq_role)
    assert rq.calling_ae == "GETSCU"
    assert rq.roles == {CT: (0, 1)}
    assert rq.contexts[0].transfer_syntaxes == [ExplicitVRLittleEndian]


def test_an_associate_rq_from_dcmtk_with_three_syntaxes() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq_user_id_user_pass)
    assert rq.calling_ae == "STORESCU" and rq.peer_max_pdu == 16384
    assert rq.implementation_uid == "1.2.276.0.7230010.3.0.3.6.0"
    [cx] = rq.contexts
    assert cx.transfer_syntaxes == [ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian]
    assert negotiate_context(cx) == (0, ExplicitVRLittleEndian)  # the requestor's first choice


def test_extended_negotiation_is_read_past() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq_user_id_ext_neg)
    assert [(cx.context_id, cx.abstract_syntax) for cx in rq.contexts] == [(1, VERIFICATION), (3, CT), (5, MR)]
    assert rq.async_ops_proposed and rq.peer_max_pdu == 16382


@pytest.mark.parametrize("name", ["a_associate_rq", "a_associate_rq_user_async", "a_associate_rq_role",
                                  "a_associate_rq_user_id_user_pass", "a_associate_rq_user_id_ext_neg",
                                  "a_associate_rq_com_ext_neg"])
def test_every_canned_associate_rq_reads_as_pynetdicom_reads_it(name: str) -> None:
    raw = getattr(pdu_items, name)
    theirs = A_ASSOCIATE_RQ()
    theirs.decode(raw)
    ours = parse_associate_rq(raw)
    assert (ours.called_ae, ours.calling_ae) == (theirs.called_ae_title, theirs.calling_ae_title)
    assert ours.application_context == theirs.application_context_name
    assert [(cx.context_id, cx.abstract_syntax, cx.transfer_syntaxes) for cx in ours.contexts] == [
        (cx.context_id, cx.abstract_syntax, cx.transfer_syntax) for cx in theirs.presentation_context]
    info = theirs.user_information
    assert (ours.peer_max_pdu, ours.implementation_uid) == (info.maximum_length, info.implementation_class_uid)
    assert ours.async_ops_proposed == (info.async_ops_window is not None)
    assert ours.roles == {uid: (item.scu_role, item.scp_role) for uid, item in info.role_selection.items()}


@pytest.mark.parametrize("name, field", [("a_associate_rq_called", "called_ae"),
                                         ("a_associate_rq_calling", "calling_ae")])
def test_blank_ae_titles_read_as_empty(name: str, field: str) -> None:
    assert getattr(parse_associate_rq(getattr(pdu_items, name)), field) == ""


def test_an_associate_rq_cut_short_is_a_protocol_error() -> None:
    raw = pdu_items.a_associate_rq
    for end in (10, 73):  # inside the fixed fields
        with pytest.raises(ProtocolError):
            parse_associate_rq(raw[:end])
    with pytest.raises(ProtocolError) as caught:
        parse_associate_rq(raw[:-3])  # inside the last item
    assert caught.value.reason == ProtocolError.INVALID_PARAM


# ---------------------------------------------------------------- A-ASSOCIATE-AC


def test_the_associate_ac_as_pynetdicom_reads_it() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq_user_id_ext_neg)
    results = [(cx.context_id, *negotiate_context(cx)) for cx in rq.contexts]
    ac = decode_ac(encode_associate_ac(rq, results, 1 << 20))
    assert ac.called_ae_title == "ANY-SCP" and ac.calling_ae_title == "ECHOSCU"
    assert ac.application_context_name == "1.2.840.10008.3.1.1.1"
    assert [(cx.context_id, cx.result, cx.transfer_syntax) for cx in ac.presentation_context] == [
        (1, 0, ImplicitVRLittleEndian), (3, 0, ImplicitVRLittleEndian), (5, 0, ImplicitVRLittleEndian)]
    user = {type(item).__name__: item for item in ac.user_information.user_data}
    assert user["MaximumLengthSubItem"].maximum_length_received == 1 << 20
    assert user["ImplementationClassUIDSubItem"].implementation_class_uid == IMPLEMENTATION_CLASS_UID
    assert user["ImplementationVersionNameSubItem"].implementation_version_name == IMPLEMENTATION_VERSION_NAME
    window = user["AsynchronousOperationsWindowSubItem"]
    assert (window.maximum_number_operations_invoked, window.maximum_number_operations_performed) == (1, 1)
    assert "UserIdentitySubItemAC" not in user and "SOPClassExtendedNegotiationSubItem" not in user


def test_a_role_proposal_is_answered_scp_never() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq_role)
    ac = decode_ac(encode_associate_ac(rq, [(1, 0, ExplicitVRLittleEndian)], 16384))
    [role] = [i for i in ac.user_information.user_data if type(i).__name__ == "SCP_SCU_RoleSelectionSubItem"]
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (CT, 0, 0)


def test_a_refused_context_echoes_a_transfer_syntax_the_peer_knows() -> None:
    rq = parse_associate_rq(pdu_items.a_associate_rq)
    ac = decode_ac(encode_associate_ac(rq, [(1, 3, "")], 16384))
    [cx] = ac.presentation_context
    assert (cx.result, cx.transfer_syntax) == (3, ImplicitVRLittleEndian)


def test_every_storage_class_pynetdicom_knows_is_offered() -> None:
    from pynetdicom.presentation import AllStoragePresentationContexts

    assert {service_of(str(cx.abstract_syntax)) for cx in AllStoragePresentationContexts} == {STORE}
    assert service_of("1.2.840.10008.5.1.4.1.1.9999") == STORE  # and any future one under the root
    assert service_of("1.2.840.10008.5.1.4.34.6.1") is None  # a worklist, not a storage class


# ------------------------------------------------------------ the short PDUs


def test_the_fixed_pdus_match_the_canned_bytes() -> None:
    assert RELEASE_RP == pdu_items.a_release_rp
    assert abort_pdu(0, 0) == pdu_items.a_abort
    assert abort_pdu(2, ProtocolError.UNRECOGNISED_PARAM) == pdu_items.a_p_abort
    assert reject_pdu(1, 1, 1) == pdu_items.a_associate_rj


# ------------------------------------------------------------------ P-DATA-TF


def test_a_c_echo_response_framed_in_one_pdu() -> None:
    command = build_response(0x8030, 1, 0x0000, sop_class=VERIFICATION)
    assert pdata_pdus(1, command, command=True, peer_max=16382) == pdu_items.p_data_tf


def test_a_large_message_is_split_within_the_peers_limit() -> None:
    payload = bytes(range(256)) * 40  # 10,240 bytes
    raw = pdata_pdus(7, payload, command=False, peer_max=4096)
    pieces, pos = [], 0
    while pos < len(raw):
        pdu = P_DATA_TF()
        length = int.from_bytes(raw[pos + 2:pos + 6], "big")
        assert length <= 4096
        pdu.decode(raw[pos:pos + 6 + length])
        pos += 6 + length
        [pdv] = pdu.presentation_data_value_items
        assert pdv.context_id == 7
        pieces.append(pdv.data)
    assert b"".join(p[1:] for p in pieces) == payload
    assert [p[0] for p in pieces] == [0x00, 0x00, 0x02]  # data, and the last bit on the last fragment only


# --------------------------------------------------------------- command sets


def test_a_c_store_rq_command_set() -> None:
    cmd = Command(dimse_items.c_store_rq_cmd[1:])  # after the message control header
    assert (cmd.field, cmd.message_id, cmd.priority, cmd.has_dataset) == (C_STORE_RQ, 7, 2, True)
    assert (cmd.sop_class, cmd.sop_instance, cmd.move_originator_ae) == ("1.1.1", "1.2.1", "UNITTEST")


def test_c_echo_and_c_find_rq_command_sets() -> None:
    echo = Command(dimse_items.c_echo_rq_cmd[1:])
    assert (echo.field, echo.message_id, echo.sop_class, echo.has_dataset) == (C_ECHO_RQ, 7, VERIFICATION, False)
    find = Command(dimse_items.c_find_rq_cmd[1:])
    assert (find.field, find.message_id, find.priority, find.has_dataset) == (C_FIND_RQ, 7, 2, True)


def test_responses_match_the_canned_bytes() -> None:
    assert build_response(0x8001, 5, 0x0000, sop_class="1.2.4.10", sop_instance="1.2.4.5.7.8") \
        == dimse_items.c_store_rsp_cmd[1:]
    assert build_response(0x8030, 8, 0x0000, sop_class=VERIFICATION) == dimse_items.c_echo_rsp_cmd[1:]


def test_a_command_set_cut_short_is_a_protocol_error() -> None:
    raw = dimse_items.c_store_rq_cmd[1:]
    for end in (4, 12, len(raw) - 1):
        with pytest.raises(ProtocolError):
            Command(raw[:end])
