"""The internet-hospital API (/thirdparty/*): patients' studies, report URLs, consultations."""

from .context import HospitalApiConfig, HospitalApiContext
from .router import router

__all__ = ["HospitalApiConfig", "HospitalApiContext", "router"]
