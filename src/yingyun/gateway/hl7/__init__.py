"""HL7 v2 over MLLP: the hospital's RIS/HIS sends orders, results and patient changes (docs/hl7.md).

`mllp` frames and listens (protocol only); `message` decodes one message by
its MSH-18 and builds its ACK; `mapping` reads the segments as the vendor's
record fields; `intake` checks the sender (`senders`), writes through
`archive.accept` and answers; `metrics` counts. The composition root
(`serve.ServeServices`) builds the listener when `--hl7-port` is given.
"""
