"""Yingyun (影云): an open-source medical-imaging cloud platform."""

__version__ = "0.1.0"
