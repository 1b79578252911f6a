"""Cloud film: the patient's and doctor's mobile pages (/h5/...)."""

from .context import PatientContext
from .links import mint_partner_link, viewer_path
from .router import PREFIX, SECURITY_HEADERS, router

__all__ = ["PREFIX", "SECURITY_HEADERS", "PatientContext", "mint_partner_link", "router", "viewer_path"]
