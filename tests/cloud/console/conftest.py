"""The staff world of tests/cloud/staff (users of every scope over a real server), for the console's tests."""

from ..staff.conftest import staff_world  # noqa: F401  (a fixture, used by name)
