"""Cloud film: the patient's and doctor's mobile pages (/h5/...)."""

from .context import PatientContext
from .links import mint_partner_link, viewer_path
from .pages import PREFIX, SECURITY_HEADERS, install

__all__ = ["PREFIX", "SECURITY_HEADERS", "PatientContext", "install", "mint_partner_link", "viewer_path"]
