"""The staff world of tests/cloud/staff (users of every scope over a real server), and studies sent into it."""

from __future__ import annotations

from datetime import datetime

import pytest

from yingyun.core.times import Zone

from ...support.partners import PartnerClient
from ..staff.conftest import staff_world  # noqa: F401  (a fixture, used by name)
from .test_stats_service import STUDY


@pytest.fixture
def sent(staff_world):  # noqa: F811  (the fixture imported above)
    """Two studies at h1 (CT, MR; one patient), one at h2 (CT), sent by each hospital's RIS."""
    rt = staff_world.runtime
    for hospital, studies in (("h1", [("S1", "CT"), ("S2", "MR")]), ("h2", [("S9", "CT")])):
        _, token = rt.tenancy.add_partner(app_id=f"ris-{hospital}", hospitals=[hospital])
        ris = PartnerClient(staff_world.url, f"ris-{hospital}", token)
        for study_id, modality in studies:
            assert ris.post("/ris/study/add", dict(STUDY, studyId=study_id, accessNumber=study_id,
                                                   modality=modality))["code"] == 0
        ris.close()
    return datetime.now(Zone(rt.settings.timezone).tz).date()
