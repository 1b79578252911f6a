"""Reading turnaround's rules (issue 15 item 8) on a hand-made set of reports whose medians and p90 are known."""

from __future__ import annotations

import statistics

import pytest

from yingyun.cloud.stats.turnaround import Read, figures, quantile

T = 1_767_225_600.0  # a stable time; waits below are minutes after it


def read(centre: str, doctor: str | None, submitted_min: float, final_min: float | None = None, *,
         stable: float | None = T, returned: int = 0, amended: int = 0) -> Read:
    return Read(centre_id=centre, doctor_id=doctor, doctor_name=None if doctor is None else f"Dr {doctor}",
                stable_at=stable, first_submitted_at=T + submitted_min * 60,
                first_final_at=None if final_min is None else T + final_min * 60,
                returned_count=returned, amended_count=amended)


def test_quantiles_interpolate_like_the_standard_library() -> None:
    assert quantile([], 0.5) is None
    assert quantile([7.0], 0.9) == 7.0
    assert quantile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert quantile([10.0, 20.0, 30.0, 40.0], 0.9) == pytest.approx(37.0)
    values = sorted([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0])
    assert quantile(values, 0.9) == pytest.approx(statistics.quantiles(values, n=10, method="inclusive")[-1])
    assert quantile(values, 0.5) == statistics.median(values)


def test_figures_per_centre_and_per_doctor() -> None:
    rows = [
        read("h1", "d1", 10, 60, returned=1), read("h1", "d1", 20, 120), read("h1", "d1", 30),
        read("h1", "d1", 40, amended=2),
        read("h1", "d2", 5, 8, returned=2),
        read("h1", "d2", 50, stable=T + 60 * 60),  # images changed after the submit: read, no wait
        read("h1", "d2", 70, 80, stable=None),  # never stable (a manual report): read and final, no wait
        read("h9", None, 90, 95),
    ]
    out = figures(rows)
    assert out["centres"] == [
        {"centreId": "h1", "studiesRead": 7, "final": 4,
         "toSubmitted": {"medianMinutes": 20.0, "p90Minutes": 36.0},  # 5 10 20 30 40
         "toFinal": {"medianMinutes": 60.0, "p90Minutes": 108.0},  # 8 60 120
         "returned": 3, "amended": 2},
        {"centreId": "h9", "studiesRead": 1, "final": 1, "toSubmitted": {"medianMinutes": 90.0, "p90Minutes": 90.0},
         "toFinal": {"medianMinutes": 95.0, "p90Minutes": 95.0}, "returned": 0, "amended": 0},
    ]
    d1, d2, nobody = out["doctors"]
    assert d1 == {"centreId": "h1", "doctorId": "d1", "doctorName": "Dr d1", "studiesRead": 4, "final": 2,
                  "toSubmitted": {"medianMinutes": 25.0, "p90Minutes": 37.0},
                  "toFinal": {"medianMinutes": 90.0, "p90Minutes": 114.0}, "returned": 1, "amended": 2}
    assert d2 == {"centreId": "h1", "doctorId": "d2", "doctorName": "Dr d2", "studiesRead": 3, "final": 2,
                  "toSubmitted": {"medianMinutes": 5.0, "p90Minutes": 5.0},
                  "toFinal": {"medianMinutes": 8.0, "p90Minutes": 8.0}, "returned": 2, "amended": 0}
    assert nobody["doctorId"] is None and nobody["studiesRead"] == 1
    assert figures([]) == {"centres": [], "doctors": []}


def test_a_doctor_with_no_wait_has_null_figures() -> None:
    [doctor] = figures([read("h1", "d1", 10, stable=None)])["doctors"]
    assert doctor["toSubmitted"] == {"medianMinutes": None, "p90Minutes": None}
    assert doctor["toFinal"] == {"medianMinutes": None, "p90Minutes": None} and doctor["final"] == 0
