"""The printable imaging report as a PDF: letterhead, patient, exam, findings, conclusion, signatures, QR.

One layout for every caller (the patient pages today, remote reading's
signed report later). The caller decides what is shown — the patient's full
name on their own copy, a masked one elsewhere — and in which words: this
module takes labelled values and lays them out, it knows no language.

The Chinese font (WenQuanYi Zen Hei, Debian's `fonts-wqy-zenhei`, installed
by scripts/install-system-deps.sh) is embedded as a subset of the glyphs
used, so the file reads the same in every viewer and printer, with no
reliance on a reader's own CJK fonts. A date-time ("2026-11-20 10:00:00") is
never broken across lines: text is broken by our own rule (between Chinese
characters, never inside a date-time, a number or a Latin word, never
before closing punctuation) rather than fpdf2's, which breaks at spaces and
then anywhere; labelled values are single cells that shrink to fit.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from .errors import Invalid, Unavailable
from .links import qr_png

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
FONT = "wqy"
LOGO_MAX_BYTES = 512 * 1024
# What a line may not be broken inside: a date-time, a run of Latin letters / digits, spaces; else one character.
TOKEN = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2} +\d{1,2}:\d{2}(?::\d{2})?"
                   r"|[A-Za-z0-9][A-Za-z0-9.,:;%/()+\-_'\"]*| +|.", re.S)
CLOSERS = set("，。、；：！？）》」』”’,.;:!?)%")  # never at the start of a line
MARGIN = 16.0  # mm
PAGE_W = 210.0
TEXT_W = PAGE_W - 2 * MARGIN

# fontTools reports, per PDF, that it drops the font's bitmap strikes from the subset: expected, not news.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

Pairs = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Letterhead:
    """Whose paper it is: the hospital's name, and its contact phone and logo (PNG or JPEG) when configured."""

    hospital: str
    contact_phone: str | None = None
    logo: bytes | None = None


@dataclass(frozen=True)
class ReportDocument:
    """Everything printed, already in the reader's words; pairs are (label, value), empty values skipped."""

    title: str
    letterhead: Letterhead
    patient: Pairs = ()
    exam: Pairs = ()
    sections: Pairs = ()  # (heading, text): findings, conclusion
    signatures: Pairs = ()  # reporting / reviewing doctors and times
    qr_url: str | None = None
    qr_caption: str = ""
    contact_label: str = ""
    footer: str = ""


def tokens(text: str) -> list[str]:
    """`text` as the pieces a line may be broken between (closing punctuation kept with what it closes)."""
    out: list[str] = []
    for tok in TOKEN.findall(text):
        if out and tok in CLOSERS:
            out[-1] += tok
        else:
            out.append(tok)
    return out


def wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    """The lines `text` takes at `width` in the current font, broken only between tokens (a token wider than
    the whole line, which no date-time or word in a report is, is cut by character)."""
    lines: list[str] = []
    for para in (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = ""
        pending = tokens(para)
        while pending:
            tok = pending.pop(0)
            if line and pdf.get_string_width(line + tok) > width:
                lines.append(line.rstrip())
                line = ""
                if tok.isspace():
                    continue
            if not line and pdf.get_string_width(tok) > width and len(tok) > 1:
                pending[:0] = list(tok)
                continue
            line += tok
        lines.append(line.rstrip())
    return lines


def check_logo(data: bytes) -> bytes:
    """`data` if it is a PNG or JPEG picture a letterhead can carry, else Invalid naming what is wrong."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > LOGO_MAX_BYTES:
        raise Invalid(f"the logo is {len(data)} bytes; at most {LOGO_MAX_BYTES}", subject="logo")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise Invalid(f"the logo is not a picture: {type(e).__name__}", subject="logo") from e
    if fmt not in ("PNG", "JPEG"):
        raise Invalid(f"the logo is {fmt}; PNG or JPEG only", subject="logo")
    return data


class _Paper(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(110, 110, 110)
        self.cell(TEXT_W * 0.8, 5, self.footer_text)
        self.cell(TEXT_W * 0.2, 5, f"{self.page_no()}/{{nb}}", align="R")


def render(doc: ReportDocument) -> bytes:
    """The report as PDF bytes (A4)."""
    if not FONT_PATH.exists():
        raise Unavailable(f"the report font {FONT_PATH} is missing: install fonts-wqy-zenhei", subject="font")
    pdf = _Paper(format="A4", unit="mm")
    pdf.footer_text = doc.footer
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_font(FONT, "", str(FONT_PATH), collection_font_number=0)
    pdf.set_title(doc.title)
    pdf.set_author(doc.letterhead.hospital)
    pdf.set_creator("Yingyun")
    pdf.add_page()
    _letterhead(pdf, doc)
    _pairs(pdf, doc.patient, columns=3)
    _rule(pdf)
    _pairs(pdf, doc.exam, columns=2)
    _rule(pdf)
    for heading, text in doc.sections:
        pdf.set_font(FONT, size=12.5)
        pdf.set_text_color(60, 60, 60)
        pdf.cell(TEXT_W, 8, heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(FONT, size=11)
        pdf.set_text_color(0, 0, 0)
        for line in wrap(pdf, text or "", TEXT_W):
            pdf.cell(TEXT_W, 6.2, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(3)
    _rule(pdf)
    _signatures_and_qr(pdf, doc)
    return bytes(pdf.output())


def _letterhead(pdf: FPDF, doc: ReportDocument) -> None:
    head = doc.letterhead
    top = pdf.get_y()
    if head.logo:
        pdf.image(io.BytesIO(head.logo), x=MARGIN, y=top, h=16, keep_aspect_ratio=True)
    pdf.set_font(FONT, size=18)
    _fit(pdf, head.hospital, TEXT_W - 40, 18)
    pdf.set_x(MARGIN + 20)
    pdf.cell(TEXT_W - 40, 9, head.hospital, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, size=14)
    pdf.set_x(MARGIN + 20)
    pdf.cell(TEXT_W - 40, 8, doc.title, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if head.contact_phone:
        pdf.set_font(FONT, size=9)
        pdf.set_x(MARGIN + 20)
        label = f"{doc.contact_label}：" if doc.contact_label else ""
        pdf.cell(TEXT_W - 40, 5, f"{label}{head.contact_phone}", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(pdf.get_y(), top + 17))
    pdf.set_draw_color(21, 101, 192)
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, pdf.get_y() + 1, PAGE_W - MARGIN, pdf.get_y() + 1)
    pdf.set_line_width(0.2)
    pdf.set_draw_color(180, 180, 180)
    pdf.ln(4)


def _rule(pdf: FPDF) -> None:
    pdf.ln(1)
    pdf.line(MARGIN, pdf.get_y(), PAGE_W - MARGIN, pdf.get_y())
    pdf.ln(2)


def _fit(pdf: FPDF, text: str, width: float, size: float) -> None:
    """Set a font size at which `text` fits `width` on one line (down to 6 pt)."""
    while size > 6 and pdf.get_string_width(text) > width:
        size -= 0.5
        pdf.set_font(FONT, size=size)


def _pairs(pdf: FPDF, pairs: Pairs, *, columns: int) -> None:
    """Label: value cells in `columns` columns; a value never wraps (it shrinks), a long one takes the row."""
    items = [(label, value) for label, value in pairs if value]
    col_w = TEXT_W / columns
    k = 0
    for label, value in items:
        text = f"{label}：{value}"
        pdf.set_font(FONT, size=10.5)
        span = columns if pdf.get_string_width(text) > col_w - 2 else 1
        if k + span > columns:
            pdf.ln(6.5)
            k = 0
        pdf.set_x(MARGIN + k * col_w)
        _fit(pdf, text, span * col_w - 2, 10.5)
        pdf.cell(span * col_w, 6.5, text)
        k += span
        if k >= columns:
            pdf.ln(6.5)
            k = 0
    if k:
        pdf.ln(6.5)


def _signatures_and_qr(pdf: FPDF, doc: ReportDocument) -> None:
    qr_size = 28.0
    if pdf.get_y() + qr_size + 8 > pdf.h - 18:
        pdf.add_page()
    top = pdf.get_y()
    left_w = TEXT_W - (qr_size + 6 if doc.qr_url else 0)
    for label, value in doc.signatures:
        if not value:
            continue
        pdf.set_x(MARGIN)
        text = f"{label}：{value}"
        pdf.set_font(FONT, size=10.5)
        _fit(pdf, text, left_w, 10.5)
        pdf.cell(left_w, 6.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if doc.qr_url:
        x = PAGE_W - MARGIN - qr_size
        pdf.image(io.BytesIO(qr_png(doc.qr_url, scale=4)), x=x, y=top, w=qr_size, h=qr_size)
        if doc.qr_caption:
            pdf.set_font(FONT, size=8)
            pdf.set_xy(x - 6, top + qr_size)
            pdf.cell(qr_size + 12, 4.5, doc.qr_caption, align="C")
        pdf.set_y(max(pdf.get_y(), top + qr_size + 6))
