"""DICOMweb (PS3.18) under /dicomweb: QIDO-RS, WADO-RS, STOW-RS.

Viewers (OHIF, Weasis, 3D Slicer) and tools (`dicomweb-client`) connect
with a partner's signature headers or an operator's bearer token, and the
reading viewer with a staff session cookie (reads only); every answer is
limited to the hospitals the caller is granted (for a staff session: the
studies its `StudyGate` lets it view), and deleted studies are invisible.
"""

from .auth import Caller, StaffSessions
from .context import DicomwebContext, HospitalScopeGate, StudyGate
from .cors import DicomwebCors
from .router import install, router
from .tokens import TokenError, TokenRegistry

__all__ = ["Caller", "DicomwebContext", "DicomwebCors", "HospitalScopeGate", "StaffSessions", "StudyGate", "TokenError",
           "TokenRegistry", "install", "router"]
