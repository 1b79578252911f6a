"""DICOMweb (PS3.18) under /dicomweb: QIDO-RS, WADO-RS, STOW-RS.

Viewers (OHIF, Weasis, 3D Slicer) and tools (`dicomweb-client`) connect
with a partner's signature headers or an operator's bearer token; every
answer is limited to the hospitals the caller is granted, and deleted
studies are invisible.
"""

from .context import DicomwebContext
from .cors import DicomwebCors
from .router import install, router
from .tokens import TokenError, TokenRegistry

__all__ = ["DicomwebContext", "DicomwebCors", "TokenError", "TokenRegistry", "install", "router"]
