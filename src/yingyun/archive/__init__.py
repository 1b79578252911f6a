"""The archive: studies, reports, links and instances as the index holds them.

Shared by the gateway (which accepts records from the hospital) and the
cloud (which ingests them from gateways): the same writers on both sides.
"""
