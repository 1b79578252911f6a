"""The image viewer: its page, the rendered images and the per-frame facts it shows."""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from ....core.render import PRESETS, RenderError, RenderOptions, describe, preset_names
from .. import study as study_svc
from .access import Access, H5Route, PageAccess, PatientCtx, finish, gate
from .landing import report_info
from .render import audit, page

log = logging.getLogger("yingyun.film")

VIEW_OPTS: dict[str, Any] = {"fmt": "jpeg", "quality": 90, "viewport": (1024, 1024)}
THUMB_OPTS: dict[str, Any] = {"fmt": "jpeg", "quality": 80, "viewport": (160, 160)}
PRESET_LABELS = ("preset_default", "preset_lung", "preset_mediastinum", "preset_bone", "preset_brain",
                 "preset_abdomen", "preset_liver", "series", "no_calibration")
INFO_KEYS = ("rows", "columns", "frames", "modality", "window", "rescale_slope", "rescale_intercept", "bits_stored",
             "slice_thickness", "slice_location", "instance_number", "series_description", "pixel_spacing", "lossy",
             "photometric", "image_orientation")
# Patient axes (DICOM LPS: +x left, +y posterior, +z head) and the letter of each direction.
AXIS_LETTERS = (("R", "L"), ("A", "P"), ("F", "H"))
OBLIQUE_SHARE = 0.25  # a direction cosine this large adds its axis's letter (HFS oblique: "LA", …)

router = APIRouter(route_class=H5Route)


def img_url(base: str, f: study_svc.Frame, *, thumb: bool = False) -> str:
    return f"{base}/img/{f.pk}/{f.version}/{f.frame}.jpg" + ("?s=thumb" if thumb else "")


def render_opts(frame: int, preset: str | None, window: str | None, thumb: bool) -> RenderOptions:
    base = THUMB_OPTS if thumb else VIEW_OPTS
    win = None
    if window:
        c, _, wd = window.partition(",")
        win = (float(c), float(wd))
    return RenderOptions(frame=frame, preset=preset or None, window=win, **base)


@router.get("/h5/{kind}/{token}/viewer")
def viewer(request: Request, ctx: PatientCtx, acc: PageAccess) -> Response:
    with ctx.db.read() as conn:
        stack = study_svc.image_stack(conn, hospital_id=acc.link.hospital_id, uids=acc.uids)
    audit(ctx, request, "view-viewer", acc.link, acc.study, acc.uids)
    base = acc.link.base_path
    modality = acc.study.modality
    manifest = {
        "base": base,
        "series": [
            {
                "index": s.index,
                "description": s.description,
                "number": s.number,
                "modality": s.modality or (modality or "").upper(),
                "presets": preset_names(s.modality or modality),
                "presetWindows": PRESETS.get((s.modality or modality or "").upper(), {}),
                "thumb": img_url(base, s.frames[len(s.frames) // 2], thumb=True) if s.frames else None,
                "frames": [[f.pk, f.version, f.frame, f.number] for f in s.frames],
            }
            for s in stack
        ],
        "labels": {k: acc.t(k) for k in PRESET_LABELS},
    }
    first = img_url(base, stack[0].frames[0]) if stack and stack[0].frames else None
    return finish(ctx, page(ctx, "viewer.html", acc.t, link=acc.link, stack=stack, first=first,
                            info=report_info(ctx, acc),
                            manifest=orjson.dumps(manifest).decode().replace("</", "<\\/"),
                            presets=preset_names(stack[0].modality or modality) if stack else []),
                  request, acc)


def image_access(request: Request, ctx: PatientCtx, kind: str, token: str, pk: int, version: int, frame: int,
                 p: str | None = None, w: str | None = None, s: str | None = None) -> Access:
    # The image's parameters are declared here so a malformed one is a 422 before
    # the gate runs (a route's own parameters are validated after its dependencies).
    return gate(ctx, request, kind, token, page=False)


@router.get("/h5/{kind}/{token}/img/{pk}/{version}/{frame}.jpg")
def image(request: Request, ctx: PatientCtx, acc: Annotated[Access, Depends(image_access)], pk: int, version: int,
          frame: int, p: str | None = None, w: str | None = None, s: str | None = None) -> Response:
    with ctx.db.read() as conn:
        inst = study_svc.instance_for(conn, hospital_id=acc.link.hospital_id, uids=acc.uids, pk=pk)
    if inst is None or inst.kind != "image":
        return Response(status_code=404)
    thumb = s == "thumb"
    try:
        opts = render_opts(frame, p, w, thumb)
    except ValueError:
        return Response(status_code=400)
    try:
        data = ctx.cache.get_or_render(("film", inst.hospital_id, inst.sop_uid, inst.version),
                                       lambda: ctx.blobs.open(inst.blob_key), opts)
    except (ValueError, IndexError):
        return Response(status_code=400)
    except RenderError as e:
        log.warning("cannot render instance pk=%d frame=%d: %s", pk, frame, e)
        return Response(status_code=422)
    audit(ctx, request, "thumbnail" if thumb else "image", acc.link, acc.study, acc.uids,
          detail=f"{pk}/{frame}" + (f" p={p}" if p else "") + (f" w={w}" if w else ""))
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "private, max-age=86400"})
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400", "ETag": etag})


def info_access(request: Request, ctx: PatientCtx, kind: str, token: str, pk: int, frame: int) -> Access:
    # As image_access: a malformed pk or frame is a 422 before the gate.
    return gate(ctx, request, kind, token, page=False)


@router.get("/h5/{kind}/{token}/info/{pk}/{frame}.json")
def info(ctx: PatientCtx, acc: Annotated[Access, Depends(info_access)], pk: int, frame: int) -> Response:
    with ctx.db.read() as conn:
        inst = study_svc.instance_for(conn, hospital_id=acc.link.hospital_id, uids=acc.uids, pk=pk)
    if inst is None:
        return Response(status_code=404)
    try:
        with ctx.blobs.open(inst.blob_key) as f:
            d = describe(f, frame, max_inflated=ctx.settings.max_inflated_bytes)
    except RenderError:
        return Response(status_code=422)
    out = {k: d.get(k) for k in INFO_KEYS}
    out["markers"] = orientation_markers(d.get("image_orientation"))
    return Response(orjson.dumps(out), media_type="application/json",
                    headers={"Cache-Control": "private, max-age=86400"})


def direction_letters(v: tuple[float, float, float] | list[float]) -> str:
    """The patient direction a unit vector points to, as film letters: strongest axis first ("L", "LA", "HRP")."""
    parts = sorted(((abs(c), k, c) for k, c in enumerate(v) if abs(c) >= OBLIQUE_SHARE), reverse=True)
    return "".join(AXIS_LETTERS[k][c > 0] for _, k, c in parts)


def orientation_markers(iop: list[float] | None) -> dict[str, str] | None:
    """The letters at the image's four edges from Image Orientation (Patient), or None without one.

    The row vector points from the left edge to the right one, the column
    vector from the top edge down (PS3.3 C.7.6.2.1.1)."""
    if not iop or len(iop) != 6:
        return None
    row, col = iop[:3], iop[3:]
    if not any(row) or not any(col):
        return None
    return {"right": direction_letters(row), "left": direction_letters([-c for c in row]),
            "bottom": direction_letters(col), "top": direction_letters([-c for c in col])}
