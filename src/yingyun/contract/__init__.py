"""The vendor's wire contract in code (../shared/spec/contract.md).

Every vendor field name, error code, the request signature and the
identity-field encryption live here and nowhere else. This package imports
nothing else of Yingyun's.
"""
