"""DICOM networking that knows nothing of Yingyun: it imports no other package of ours.

A DICOM upper-layer server (SCP: C-ECHO, C-STORE, C-FIND), one module per
layer of PS3.8 / PS3.7, each importing only those below it (the rule is
checked by ``tests/test_architecture.py``)::

    server        the listener: accepts, hands out slots, starts associations, shuts down
    association   one association's thread: socket reads, message reassembly, DIMSE services
    acse          association negotiation: refusals, presentation contexts
    dimse         DIMSE command sets, the provider's request and response types
    pdu           PDU codecs: pure functions over bytes
    status        DIMSE status values and their categories
    uids          the implementation identity, SOP classes and transfer syntaxes
    slots         the association limit shared by processes

The gateway binds it to the archive (``gateway/scp.py``, ``gateway/receiver.py``).
"""
