"""DICOM networking that knows nothing of Yingyun: it imports no other package of ours.

Today it holds the DIMSE status vocabulary (``status``); the upper layer
(``gateway/upperlayer.py``) moves here by layer in issue 13.
"""
