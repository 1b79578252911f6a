"""The internet-hospital API (/thirdparty/*): patients' studies, report URLs, consultations."""

from .context import HospitalApiConfig, HospitalApiContext
from .router import pages_router, router

__all__ = ["HospitalApiConfig", "HospitalApiContext", "pages_router", "router"]
