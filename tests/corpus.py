"""Generate the test documents at test time: one file per supported format, plus bad files.

Nothing here touches the network and no document is checked into the repository. The
generators rely only on what the appliance image already ships: python-docx, python-pptx,
openpyxl, msoffcrypto-tool and Pillow from the virtualenv, and LibreOffice (``soffice``),
pandoc and the DejaVu fonts from Debian.

* :func:`build_corpus` writes one document per format, each holding one unique, made-up fact
  (a marker word such as ``QUIVERNE-42``) that a search must be able to retrieve.
* :func:`build_bad_files` writes files every ingest must refuse cleanly (or recover from).
* :func:`build_bulk` writes many small text files for crash/resume and benchmark tests.

Outlook ``.msg`` files are written by a small Compound File Binary writer at the end of this
module, since no library available here writes them.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import shutil
import struct
import subprocess
import tempfile
import textwrap
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from io import BytesIO
from pathlib import Path

__all__ = [
    "BAD_FILE_OUTCOMES",
    "Fact",
    "build_bad_files",
    "build_bulk",
    "build_corpus",
    "bulk_marker",
    "write_msg",
]

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_SENT = dt.datetime(2024, 3, 12, 9, 30, tzinfo=dt.UTC)  # fixed, so output is reproducible


@dataclass(frozen=True)
class Fact:
    """One retrievable fact: the file holding it and a question it answers."""

    filename: str
    fmt: str
    question: str
    marker: str
    lang: str


@dataclass(frozen=True)
class _Doc:
    """What goes into one generated document.

    Prose formats use the title, two headed sections (``intro`` then ``fact`` + ``outro``).
    Table formats (xlsx, xls, csv) use ``rows`` instead, whose last column holds the fact.
    """

    fmt: str
    filename: str
    lang: str
    title: str
    intro_heading: str
    intro: str
    fact_heading: str
    fact: str
    question: str
    marker: str
    outro: str = ""
    rows: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def stem(self) -> str:
        return Path(self.filename).stem

    def markdown(self) -> str:
        """The document as Markdown (source for md, odt, epub and rtf)."""
        return (
            f"# {self.title}\n\n## {self.intro_heading}\n\n{self.intro}\n\n"
            f"## {self.fact_heading}\n\n{self.fact}\n\n{self.outro}\n"
        )

    def plain(self) -> str:
        """The document as plain text with underlined headings (txt)."""
        parts = [self.title, "=" * len(self.title), ""]
        for heading, body in ((self.intro_heading, self.intro), (self.fact_heading, self.fact)):
            parts += [heading, "-" * len(heading), "", body, ""]
        if self.outro:
            parts += [self.outro, ""]
        return "\n".join(parts)

    def letter(self) -> str:
        """The document as an email body: the title is the subject, headings are short lines."""
        return (
            f"{self.intro_heading}\n\n{self.intro}\n\n{self.fact_heading}\n\n{self.fact}\n\n"
            f"{self.outro}\n"
        )


# Every document has its own topic, so a search engine can tell them apart; 7 are French.
_DOCS: tuple[_Doc, ...] = (
    _Doc(
        fmt="pdf", filename="parking.pdf", lang="fr",
        title="Règlement du parking souterrain",
        intro_heading="Accès et horaires",
        intro="Le parking souterrain du bâtiment B est ouvert aux salariés du lundi au "
        "vendredi, de 7 h à 20 h. Les places réservées aux visiteurs se trouvent au premier "
        "niveau, près de l'ascenseur. Les vélos sont rangés dans le local prévu à cet effet.",
        fact_heading="Code du portail",
        fact="Le code d'accès du portail du parking souterrain est QUIVERNE-42.",
        question="Quel est le code d'accès du portail du parking souterrain ?",
        marker="QUIVERNE-42",
        outro="En cas de panne de la barrière, appelez le poste de sécurité de l'accueil.",
    ),
    _Doc(
        fmt="scanned_pdf", filename="scan.pdf", lang="en",
        title="Staff Cafeteria Notice",
        intro_heading="Opening hours",
        intro="The staff cafeteria on the ground floor serves breakfast from 8 am and lunch "
        "from noon until 2 pm. Vegetarian dishes are available every day.",
        fact_heading="Lunch vouchers",
        fact="The cafeteria voucher code for the staff lunch is ZORBLAX-17.",
        question="What is the cafeteria voucher code for the staff lunch?",
        marker="ZORBLAX-17",
        outro="Please return your tray to the rack next to the exit.",
    ),
    _Doc(
        fmt="docx", filename="fleet.docx", lang="en",
        title="Company Vehicle Fleet Guide",
        intro_heading="Booking a van",
        intro="Delivery vans are booked through the facilities desk at least two days in "
        "advance. Drivers must hold a valid licence and check tyre pressure, fuel level and "
        "lights before leaving the depot.",
        fact_heading="Insurance",
        fact="The insurance policy number for the delivery vans is VANTORIQ-88.",
        question="What is the insurance policy number for the delivery vans?",
        marker="VANTORIQ-88",
        outro="Report any accident or scratch to the fleet coordinator on the same day.",
    ),
    _Doc(
        fmt="pptx", filename="product_launch.pptx", lang="en",
        title="Spring Product Launch Plan",
        intro_heading="Market goals",
        intro="We aim to double online sales in the northern region and sign two new retail "
        "partnerships before summer. Marketing will run a social media campaign in April.",
        fact_heading="Launch codename",
        fact="The codename of the new product launch is PELLINTRA-23.",
        question="What is the codename of the new product launch?",
        marker="PELLINTRA-23",
        outro="The press embargo ends on the first Monday of May.",
    ),
    _Doc(
        fmt="xlsx", filename="inventory.xlsx", lang="en",
        title="Office Supplies Inventory",
        intro_heading="", intro="", fact_heading="",
        fact="The spare printer toner is stored on shelf BRASKOLUM-65.",
        question="Which shelf stores the spare printer toner?",
        marker="BRASKOLUM-65",
        rows=(
            ("Item", "Quantity", "Location", "Note"),
            ("A4 paper reams", "40", "Supply room", "Reorder when fewer than ten remain."),
            ("Ballpoint pens", "300", "Supply room", "Blue ink only."),
            ("Spare printer toner", "6", "Copy room",
             "The spare printer toner is stored on shelf BRASKOLUM-65."),
            ("Whiteboard markers", "48", "Reception", "Ask reception for new packs."),
        ),
    ),
    _Doc(
        fmt="odt", filename="archives.odt", lang="fr",
        title="Fonds d'archives municipales",
        intro_heading="Consultation des registres",
        intro="Les registres anciens sont consultables en salle de lecture sur rendez-vous. "
        "Les documents fragiles ne peuvent être photographiés qu'avec l'accord de "
        "l'archiviste, et sans flash.",
        fact_heading="Cotes des registres",
        fact="La cote du registre des délibérations de 1987 est FARNELIDE-31.",
        question="Quelle est la cote du registre des délibérations de 1987 ?",
        marker="FARNELIDE-31",
        outro="Les demandes de reproduction sont traitées sous quinze jours.",
    ),
    _Doc(
        fmt="html", filename="guest_wifi.html", lang="en",
        title="Guest Network Help",
        intro_heading="Connecting visitors",
        intro="Visitors can connect laptops and phones to the guest network in meeting rooms "
        "and in the lobby. The guest network is isolated from internal servers.",
        fact_heading="Password",
        fact="The Wi-Fi password for the guest network is TRUMBLEX-54.",
        question="What is the Wi-Fi password for the guest network?",
        marker="TRUMBLEX-54",
        outro="The password changes at the start of every month.",
    ),
    _Doc(
        fmt="md", filename="evacuation.md", lang="fr",
        title="Consignes d'évacuation incendie",
        intro_heading="Points de rassemblement",
        intro="En cas d'alarme, quittez le bâtiment par l'escalier le plus proche sans "
        "utiliser l'ascenseur. Le point de rassemblement se trouve sur la pelouse devant "
        "l'entrée principale.",
        fact_heading="Exercice annuel",
        fact="Le nom de code de l'exercice d'évacuation incendie est GLAVORINE-76.",
        question="Quel est le nom de code de l'exercice d'évacuation incendie ?",
        marker="GLAVORINE-76",
        outro="Les serre-files portent un brassard orange pendant l'exercice.",
    ),
    _Doc(
        fmt="txt", filename="greenhouse.txt", lang="en",
        title="Greenhouse Maintenance Notes",
        intro_heading="Watering schedule",
        intro="Tomato seedlings are watered every morning and the herb beds every second "
        "day. Ventilation flaps open automatically above twenty-six degrees.",
        fact_heading="Irrigation controller",
        fact="The serial number of the greenhouse irrigation controller is PLOMDREX-29.",
        question="What is the serial number of the greenhouse irrigation controller?",
        marker="PLOMDREX-29",
        outro="Clean the drip filters at the end of each month.",
    ),
    _Doc(
        fmt="csv", filename="meeting_rooms.csv", lang="en",
        title="Meeting rooms", intro_heading="", intro="", fact_heading="",
        fact="The boardroom projector remote is kept in locker SNORVIK-38.",
        question="Which locker holds the boardroom projector remote?",
        marker="SNORVIK-38",
        rows=(
            ("Room", "Capacity", "Equipment", "Note"),
            ("Atlas", "8", "Screen", "Book through the shared calendar."),
            ("Boardroom", "20", "Projector",
             "The boardroom projector remote is kept in locker SNORVIK-38."),
            ("Cedar", "4", "Whiteboard", "No food allowed."),
        ),
    ),
    _Doc(
        fmt="eml", filename="seminaire.eml", lang="fr",
        title="Séminaire annuel : informations pratiques",
        intro_heading="Programme",
        intro="Bonjour à tous, le séminaire annuel de l'équipe commerciale se tiendra le "
        "14 juin au centre de congrès. Le déjeuner sera servi sur place et une navette "
        "partira de la gare à 8 h 30.",
        fact_heading="Visioconférence",
        fact="Le mot de passe de la visioconférence du séminaire annuel est CASTELBRUNE-57.",
        question="Quel est le mot de passe de la visioconférence du séminaire annuel ?",
        marker="CASTELBRUNE-57",
        outro="Bien cordialement, l'équipe organisation.",
    ),
    _Doc(
        fmt="msg", filename="lisbon_trip.msg", lang="en",
        title="Travel arrangements for the Lisbon trip",
        intro_heading="Flights and hotel",
        intro="Hi team, flights to Lisbon depart on Tuesday morning and the hotel is a short "
        "walk from the conference centre. Keep all taxi receipts for your expense report.",
        fact_heading="Booking",
        fact="The travel agency booking reference for the Lisbon trip is KRANDELOV-93.",
        question="What is the booking reference for the Lisbon trip?",
        marker="KRANDELOV-93",
        outro="Safe travels, the travel desk.",
    ),
    _Doc(
        fmt="epub", filename="onboarding.epub", lang="en",
        title="Engineering Onboarding Handbook",
        intro_heading="Your first week",
        intro="During the first week new engineers set up their laptop, meet their team and "
        "shadow a colleague during code review. Production access is granted only after the "
        "security training.",
        fact_heading="Mentoring",
        fact="The onboarding mentor programme for new engineers is called WINTERLOOM-61.",
        question="What is the onboarding mentor programme for new engineers called?",
        marker="WINTERLOOM-61",
        outro="Mentors meet their mentees every Friday afternoon.",
    ),
    _Doc(
        fmt="rtf", filename="fournisseurs.rtf", lang="fr",
        title="Comptabilité fournisseurs",
        intro_heading="Règlement des factures",
        intro="Les factures fournisseurs sont réglées à trente jours fin de mois, par "
        "virement uniquement. Toute facture doit mentionner le numéro de bon de commande.",
        fact_heading="Comptes fournisseurs",
        fact="Le numéro de compte fournisseur de la papeterie est DRAVELINO-84.",
        question="Quel est le numéro de compte fournisseur de la papeterie ?",
        marker="DRAVELINO-84",
        outro="Les avoirs sont imputés sur la facture suivante.",
    ),
    _Doc(
        fmt="doc", filename="conges.doc", lang="fr",
        title="Guide des congés",
        intro_heading="Congés payés",
        intro="Les demandes de congés payés sont déposées au moins un mois à l'avance auprès "
        "du responsable hiérarchique. Les jours non pris au 31 mai peuvent être placés sur "
        "le compte épargne-temps.",
        fact_heading="Congé parental",
        fact="Le formulaire de demande de congé parental porte la référence MIRABESQUE-19.",
        question="Quelle est la référence du formulaire de demande de congé parental ?",
        marker="MIRABESQUE-19",
        outro="Le service des ressources humaines répond sous une semaine.",
    ),
    _Doc(
        fmt="ppt", filename="phishing.ppt", lang="en",
        title="Security Awareness Training",
        intro_heading="Spotting phishing",
        intro="Check the sender address, hover over links before clicking and never type "
        "your password on a page reached from an email.",
        fact_heading="This quarter's drill",
        fact="The phishing drill this quarter uses the sender alias GRIMWALDO-45.",
        question="Which sender alias does the phishing drill use this quarter?",
        marker="GRIMWALDO-45",
        outro="Report suspicious messages with the button in your mail client.",
    ),
    _Doc(
        fmt="xls", filename="budget_travaux.xls", lang="fr",
        title="Budget des travaux", intro_heading="", intro="", fact_heading="",
        fact="La ligne budgétaire de la rénovation de la toiture est TOLBRECHE-73.",
        question="Quelle est la ligne budgétaire de la rénovation de la toiture ?",
        marker="TOLBRECHE-73",
        rows=(
            ("Poste", "Montant (€)", "Échéance", "Remarque"),
            ("Remplacement des fenêtres", "48000", "2025", "Devis en cours."),
            ("Rénovation de la toiture", "120000", "2026",
             "La ligne budgétaire de la rénovation de la toiture est TOLBRECHE-73."),
            ("Peinture des couloirs", "9500", "2025", "Travaux pendant l'été."),
        ),
    ),
)


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def build_corpus(dest: Path) -> list[Fact]:
    """Write one document per format into ``dest`` and return the fact each one holds.

    Takes a few seconds: four LibreOffice conversions (pdf, doc, ppt, xls) and three pandoc
    runs (odt, epub, rtf), which run concurrently with the LibreOffice ones.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="greffier-corpus-") as tmp:
        scratch = Path(tmp)
        to_convert: dict[str, list[Path]] = {}  # LibreOffice target format → sources
        pandoc_jobs: list[subprocess.Popen[bytes]] = []
        try:
            for doc in _DOCS:
                if doc.fmt in _LIBREOFFICE_SOURCES:
                    ext, write = _LIBREOFFICE_SOURCES[doc.fmt]
                    source = scratch / doc.fmt / f"{doc.stem}.{ext}"
                    source.parent.mkdir(exist_ok=True)
                    write(doc, source)
                    to_convert.setdefault(doc.fmt, []).append(source)
                elif doc.fmt in ("odt", "epub", "rtf"):
                    pandoc_jobs.append(_start_pandoc(doc, dest / doc.filename, scratch))
                else:
                    _WRITERS[doc.fmt](doc, dest / doc.filename)
            _soffice_convert(to_convert, dest, scratch / "lo-profile")
            for job in pandoc_jobs:
                _wait(job, "pandoc")
        finally:
            for job in pandoc_jobs:
                if job.poll() is None:
                    job.kill()
                    job.wait()
    facts = [Fact(d.filename, d.fmt, d.question, d.marker, d.lang) for d in _DOCS]
    missing = [f.filename for f in facts if not (dest / f.filename).is_file()]
    if missing:
        raise RuntimeError(f"corpus generation did not produce {missing}")
    return facts


def _write_docx(doc: _Doc, out: Path) -> None:
    """Title, two headed sections, with python-docx."""
    import docx

    document = docx.Document()
    document.core_properties.language = doc.lang
    document.add_heading(doc.title, level=0)
    document.add_heading(doc.intro_heading, level=1)
    document.add_paragraph(doc.intro)
    document.add_heading(doc.fact_heading, level=1)
    document.add_paragraph(doc.fact)
    document.add_paragraph(doc.outro)
    document.save(str(out))


def _write_pptx(doc: _Doc, out: Path) -> None:
    """Three slides: title, the intro section, the fact section."""
    from pptx import Presentation

    deck = Presentation()
    cover = deck.slides.add_slide(deck.slide_layouts[0])
    cover.shapes.title.text = doc.title
    cover.placeholders[1].text = doc.intro_heading
    for heading, paragraphs in (
        (doc.intro_heading, [doc.intro]),
        (doc.fact_heading, [doc.fact, doc.outro]),
    ):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = heading
        body = slide.placeholders[1].text_frame
        body.text = paragraphs[0]
        for text in paragraphs[1:]:
            body.add_paragraph().text = text
    deck.save(str(out))


def _write_xlsx(doc: _Doc, out: Path) -> None:
    """A title row, a blank row, then the table whose last column holds the fact."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = doc.title[:31]
    sheet.append([doc.title])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append([])
    for row in doc.rows:
        sheet.append(list(row))
    for column, width in zip("ABCD", (28, 12, 14, 70), strict=True):
        sheet.column_dimensions[column].width = width
    book.save(str(out))


def _write_html(doc: _Doc, out: Path) -> None:
    def p(text: str) -> str:
        return f"<p>{escape(text)}</p>"

    out.write_text(
        f'<!DOCTYPE html>\n<html lang="{doc.lang}">\n<head><meta charset="utf-8">'
        f"<title>{escape(doc.title)}</title></head>\n<body>\n"
        f"<h1>{escape(doc.title)}</h1>\n<h2>{escape(doc.intro_heading)}</h2>\n{p(doc.intro)}\n"
        f"<h2>{escape(doc.fact_heading)}</h2>\n{p(doc.fact)}\n{p(doc.outro)}\n</body>\n</html>\n",
        encoding="utf-8",
    )


def _write_md(doc: _Doc, out: Path) -> None:
    out.write_text(doc.markdown(), encoding="utf-8")


def _write_txt(doc: _Doc, out: Path) -> None:
    out.write_text(doc.plain(), encoding="utf-8")


def _write_csv(doc: _Doc, out: Path) -> None:
    import csv

    with out.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(doc.rows)


def _write_eml(doc: _Doc, out: Path) -> None:
    message = EmailMessage()
    message["Subject"] = doc.title
    message["From"] = "Équipe organisation <organisation@example.org>"
    message["To"] = "Équipe commerciale <commercial@example.org>"
    message["Date"] = format_datetime(_SENT)
    message["Message-ID"] = "<seminaire-2024@example.org>"
    message.set_content(doc.letter())
    out.write_bytes(bytes(message))


def _write_msg_doc(doc: _Doc, out: Path) -> None:
    write_msg(
        out,
        subject=doc.title,
        body=doc.letter(),
        sender_name="Travel Desk",
        sender_email="travel@example.org",
        recipient_name="Sales Team",
        recipient_email="sales@example.org",
    )


def _write_scanned_pdf(doc: _Doc, out: Path) -> None:
    """An A4 page at 300 dpi that is only an image: no text layer, OCR is the only way in."""
    from PIL import Image, ImageDraw, ImageFont

    dpi, width, height, margin = 300, 2480, 3508, 200
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    fonts = {
        "title": ImageFont.truetype(str(_FONT_DIR / "DejaVuSans-Bold.ttf"), 84),
        "heading": ImageFont.truetype(str(_FONT_DIR / "DejaVuSans-Bold.ttf"), 66),
        "body": ImageFont.truetype(str(_FONT_DIR / "DejaVuSans.ttf"), 56),
    }
    blocks = [
        ("title", doc.title), ("heading", doc.intro_heading), ("body", doc.intro),
        ("heading", doc.fact_heading), ("body", doc.fact), ("body", doc.outro),
    ]
    y = margin
    for style, text in blocks:
        font = fonts[style]
        for line in textwrap.wrap(text, width=62):
            draw.text((margin, y), line, font=font, fill=0)
            y += int(font.size * 1.5)
        y += int(font.size * 0.8)
    # Two-tone like a clean office scan; Pillow stores it as a single image XObject.
    page.convert("1").save(out, "PDF", resolution=dpi)


_Writer = Callable[[_Doc, Path], None]

# Formats written directly into the corpus folder.
_WRITERS: dict[str, _Writer] = {
    "docx": _write_docx,
    "pptx": _write_pptx,
    "xlsx": _write_xlsx,
    "html": _write_html,
    "md": _write_md,
    "txt": _write_txt,
    "csv": _write_csv,
    "eml": _write_eml,
    "msg": _write_msg_doc,
    "scanned_pdf": _write_scanned_pdf,
}
# Formats LibreOffice converts to: the source extension and its writer.
_LIBREOFFICE_SOURCES: dict[str, tuple[str, _Writer]] = {
    "pdf": ("docx", _write_docx),
    "doc": ("docx", _write_docx),
    "ppt": ("pptx", _write_pptx),
    "xls": ("xlsx", _write_xlsx),
}


def _start_pandoc(doc: _Doc, out: Path, scratch: Path) -> subprocess.Popen[bytes]:
    """Start pandoc converting the Markdown of ``doc`` to odt, epub or rtf (not waited for).

    Note: pandoc writes accented letters in RTF as ``\\u233?``; the RTF *reader* of
    pandoc 2.17 (which unstructured uses to parse RTF) then drops the character after
    each one ("numéro" comes back as "numéo"). Markers are ASCII, so they survive.
    """
    source = scratch / f"{doc.stem}.md"
    source.write_text(doc.markdown(), encoding="utf-8")
    args = ["pandoc", "-f", "markdown", "-o", str(out), "--metadata", f"lang={doc.lang}"]
    if doc.fmt == "epub":
        args += ["-t", "epub3", "--metadata", f"title={doc.title}"]
    elif doc.fmt == "rtf":
        args += ["-s", "-t", "rtf"]
    return subprocess.Popen(
        [*args, str(source)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait(job: subprocess.Popen[bytes], what: str) -> None:
    _, err = job.communicate(timeout=120)
    if job.returncode != 0:
        raise RuntimeError(f"{what} failed ({job.returncode}): {err.decode(errors='replace')}")


def _soffice_convert(jobs: dict[str, list[Path]], outdir: Path, profile: Path) -> None:
    """Convert each group of sources with one LibreOffice run per target format.

    ``soffice --convert-to`` takes a single target format per run, so the cost is one run
    per format, whatever the number of files. A private profile directory keeps concurrent
    test runs (and a desktop LibreOffice) from clashing over the lock of a shared profile.
    """
    if not jobs:
        return
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        raise RuntimeError("LibreOffice (soffice) is needed to generate pdf, doc, ppt and xls")
    for target, sources in jobs.items():
        done = subprocess.run(
            [
                soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless",
                "--norestore", "--nologo", "--nolockcheck",
                "--convert-to", target, "--outdir", str(outdir), *map(str, sources),
            ],
            capture_output=True, timeout=180, check=False,
        )
        produced = [outdir / f"{s.stem}.{target}" for s in sources]
        if done.returncode != 0 or not all(p.is_file() for p in produced):
            raise RuntimeError(
                f"soffice --convert-to {target} failed ({done.returncode}): "
                f"{done.stdout.decode(errors='replace')} {done.stderr.decode(errors='replace')}"
            )


# --------------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------------

# What the ingest must report for each bad file: an error class name, or "indexed".
# truncated.pdf keeps no trailer or xref: pypdf (strict=False) raises PdfStreamError while
# opening it and partition_pdf(strategy="fast") returns no element, so nothing is recovered.
BAD_FILE_OUTCOMES: dict[str, str] = {
    "truncated.pdf": "ParseFailedError",
    "protected.docx": "EncryptedDocumentError",
    "empty.txt": "EmptyDocumentError",
    "junk.pdf": "ParseFailedError",
    "big.txt": "FileTooLargeError",
    "bomb.docx": "SuspiciousArchiveError",
}

_MB = 1024 * 1024


def build_bad_files(dest: Path) -> dict[str, str]:
    """Write files the ingest must refuse; return filename → expected outcome keyword.

    The keyword is the name of the error the ingest should report for the file.
    """
    dest.mkdir(parents=True, exist_ok=True)
    _write_truncated_pdf(dest / "truncated.pdf")
    _write_protected_docx(dest / "protected.docx")
    (dest / "empty.txt").write_bytes(b"")
    (dest / "junk.pdf").write_bytes(random.Random(1234).randbytes(64 * 1024))
    _write_big_text(dest / "big.txt", 50 * _MB)
    _write_zip_bomb(dest / "bomb.docx", 600 * _MB)
    return dict(BAD_FILE_OUTCOMES)


def _write_truncated_pdf(out: Path, keep: float = 0.4) -> None:
    """A real LibreOffice PDF of a few pages, cut to ``keep`` of its bytes."""
    paragraph = (
        "The quarterly maintenance report lists the boilers, lifts and fire doors inspected "
        "this season, with the defects found and the date each one was repaired. "
    ) * 6
    with tempfile.TemporaryDirectory(prefix="greffier-bad-") as tmp:
        scratch = Path(tmp)
        doc = _Doc(
            fmt="pdf", filename="truncated.pdf", lang="en", title="Maintenance Report",
            intro_heading="Inspections", intro=paragraph * 4, fact_heading="Repairs",
            fact=paragraph * 4, question="", marker="", outro=paragraph * 4,
        )
        source = scratch / "src" / "truncated.docx"
        source.parent.mkdir()
        _write_docx(doc, source)
        _soffice_convert({"pdf": [source]}, scratch, scratch / "lo-profile")
        data = (scratch / "truncated.pdf").read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])


def _write_protected_docx(out: Path, password: str = "greffier") -> None:
    """A real docx encrypted with a password (ECMA-376 agile encryption, in an OLE2 file)."""
    import docx
    from msoffcrypto.format.ooxml import OOXMLFile

    document = docx.Document()
    document.add_heading("Salaires confidentiels", level=1)
    document.add_paragraph("Ce document est protégé par un mot de passe.")
    plain = BytesIO()
    document.save(plain)
    plain.seek(0)
    with out.open("wb") as handle:
        OOXMLFile(plain).encrypt(password, handle)


def _write_big_text(out: Path, size: int) -> None:
    """``size`` bytes of ordinary text, written 1 MB at a time."""
    line = b"This line of plain text only exists to make the file very large indeed.\n"
    chunk = line * (_MB // len(line) + 1)
    with out.open("wb") as handle:
        remaining = size
        while remaining > 0:
            piece = chunk[: min(_MB, remaining)]
            handle.write(piece)
            remaining -= len(piece)


def _write_zip_bomb(out: Path, unpacked: int) -> None:
    """A docx-looking zip with one member of ``unpacked`` zero bytes (deflates ~1000:1).

    The member is streamed in 1 MB blocks, so memory stays bounded; the file is ~0.6 MB.
    """
    block = bytes(_MB)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _BOMB_CONTENT_TYPES)
        archive.writestr("word/document.xml", _BOMB_DOCUMENT)
        with archive.open("word/media/filler.bin", "w", force_zip64=True) as member:
            for _ in range(unpacked // _MB):
                member.write(block)


_BOMB_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="'
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_BOMB_DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.'
    'org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>bomb</w:t></w:r></w:p></w:body>'
    "</w:document>"
)


# --------------------------------------------------------------------------------------------
# Bulk files
# --------------------------------------------------------------------------------------------

_WORDS = (
    "river stone garden window copper lantern meadow harbor signal pencil orchard basket "
    "ladder velvet compass thunder marble canvas puzzle rocket violet saddle timber walnut "
    "kettle ribbon falcon glacier hollow island jacket kernel lemon mirror nectar oyster "
    "parcel quartz ripple shadow tunnel umbrella valley wagon yellow zephyr anchor bridge "
    "candle desert engine feather ginger hammer insect jungle kitten ledger magnet needle "
    "ocean pepper quiver rabbit summit tablet uniform vessel whistle yarn zipper autumn "
    "blossom cactus dragon ember forest granite horizon iron jasmine kayak lagoon mosaic "
    "nickel olive prairie quill raven saffron tulip utensil willow pebble "
    "report budget meeting schedule invoice customer project network printer contract"
).split()


def bulk_marker(index: int, seed: int = 0) -> str:
    """The unique marker word written into bulk file number ``index``."""
    return f"BULK{seed}X{index:06d}"


def build_bulk(dest: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` small files (alternately .txt and .md) of ~1,500 characters each.

    Each file has two short sections of deterministic pseudo-random words, and the marker
    :func:`bulk_marker` ``(index, seed)`` in its second section. Same ``seed``, same bytes.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for index in range(n):
        rng = random.Random(seed * 1_000_003 + index)
        marker = bulk_marker(index, seed)
        first, second = _bulk_section(rng, 700), _bulk_section(rng, 600)
        heads = [" ".join(rng.choices(_WORDS, k=3)).capitalize() for _ in range(2)]
        second = f"{second} The reference for this note is {marker}."
        if index % 2:
            text = f"# Note {index}\n\n## {heads[0]}\n\n{first}\n\n## {heads[1]}\n\n{second}\n"
            suffix = ".md"
        else:
            text = f"Note {index}\n\n{heads[0]}\n\n{first}\n\n{heads[1]}\n\n{second}\n"
            suffix = ".txt"
        (dest / f"bulk_{index:06d}{suffix}").write_text(text, encoding="utf-8")


def _bulk_section(rng: random.Random, chars: int) -> str:
    """Sentences of 6-12 random words, about ``chars`` characters in all."""
    sentences: list[str] = []
    total = 0
    while total < chars:
        sentence = " ".join(rng.choices(_WORDS, k=rng.randint(6, 12))).capitalize() + "."
        sentences.append(sentence)
        total += len(sentence) + 1
    return " ".join(sentences)


# --------------------------------------------------------------------------------------------
# Outlook .msg: a minimal Compound File Binary writer
# --------------------------------------------------------------------------------------------
#
# An Outlook message ([MS-OXMSG]) is a Compound File Binary file ([MS-CFB]): a tiny FAT file
# system inside one file. Its root storage holds one stream per variable-length property
# (``__substg1.0_<PID><TYPE>``), a ``__properties_version1.0`` stream listing every property
# in 16-byte entries (holding fixed-size values inline), and sub-storages for recipients,
# attachments and named properties.
#
# This writer produces version 3 files (512-byte sectors): a header, FAT sectors, directory
# sectors (4 entries of 128 bytes each), the mini FAT, the mini stream (streams under 4096
# bytes live there, in 64-byte mini sectors) and then any large streams. Every chain is laid
# out contiguously, so the FAT is a list of runs.

_SECTOR, _MINI_SECTOR, _MINI_CUTOFF = 512, 64, 4096
_FREESECT, _ENDOFCHAIN, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_STORAGE, _STREAM, _ROOT = 1, 2, 5
_RED, _BLACK = 0, 1
_DIR_ENTRY = struct.Struct("<64sHBBIII16sIQQIQ")  # 128 bytes, [MS-CFB] 2.6.1
_HEADER = struct.Struct("<8s16sHHHHH6sIIIIIIIII")  # 76 bytes, then 109 DIFAT slots

# MAPI property types ([MS-OXCDATA] 2.11.1) and the property ids used below.
_PT_LONG, _PT_SYSTIME, _PT_UNICODE = 0x0003, 0x0040, 0x001F


@dataclass
class _Node:
    """A storage (``data is None``) or a stream in the compound file tree."""

    name: str
    data: bytes | None = None
    children: list[_Node] = field(default_factory=list)
    # Filled in by the writer:
    left: int = _NOSTREAM
    right: int = _NOSTREAM
    child: int = _NOSTREAM
    color: int = _BLACK
    start: int = _ENDOFCHAIN

    def sort_key(self) -> tuple[int, str]:
        """[MS-CFB] order of siblings: shorter names first, then by upper-cased name."""
        return len(self.name), self.name.upper()


def _cfb_bytes(root: _Node) -> bytes:
    """Serialize the tree under ``root`` as a version 3 compound file."""
    # 1. Number the entries (root is 0) and link each storage's children into a balanced
    #    binary search tree, colored as a valid red-black tree (see _link_siblings).
    entries: list[_Node] = []

    def number(node: _Node) -> None:
        entries.append(node)
        for kid in node.children:
            number(kid)

    number(root)
    ids = {id(node): index for index, node in enumerate(entries)}
    for node in entries:
        node.child = _link_siblings([ids[id(k)] for k in node.children], entries)

    # 2. Small streams go to the mini stream, large ones to regular sectors.
    mini_stream, mini_fat = bytearray(), []
    big: list[_Node] = []
    for node in entries:
        if not node.data:  # storages and empty streams own no sectors
            continue
        if len(node.data) >= _MINI_CUTOFF:
            big.append(node)
            continue
        count = -(-len(node.data) // _MINI_SECTOR)
        node.start = len(mini_fat)
        mini_fat += _chain(node.start, count)
        mini_stream += node.data.ljust(count * _MINI_SECTOR, b"\0")

    # 3. Lay out regular sectors: FAT | directory | mini FAT | mini stream | large streams.
    def sectors(size: int) -> int:
        return -(-size // _SECTOR)

    n_dir = sectors(len(entries) * _DIR_ENTRY.size)
    n_minifat = sectors(len(mini_fat) * 4)
    n_ministream = sectors(len(mini_stream))
    n_data = n_dir + n_minifat + n_ministream + sum(sectors(len(b.data or b"")) for b in big)
    n_fat = 1
    while n_fat * (_SECTOR // 4) < n_fat + n_data:  # the FAT also maps its own sectors
        n_fat += 1
    if n_fat > 109:
        raise ValueError("compound file too large for this writer (no DIFAT sectors)")

    fat = [_FATSECT] * n_fat
    dir_start = len(fat)
    fat += _chain(dir_start, n_dir)
    minifat_start = len(fat) if n_minifat else _ENDOFCHAIN
    fat += _chain(len(fat), n_minifat)
    root.start = len(fat) if n_ministream else _ENDOFCHAIN
    fat += _chain(len(fat), n_ministream)
    for node in big:
        node.start = len(fat)
        fat += _chain(node.start, sectors(len(node.data or b"")))
    fat += [_FREESECT] * (n_fat * (_SECTOR // 4) - len(fat))

    # 4. Serialize.
    header = _HEADER.pack(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", bytes(16),
        0x003E, 0x0003, 0xFFFE, 9, 6, bytes(6),  # minor/major version, byte order, shifts
        0, n_fat, dir_start, 0, _MINI_CUTOFF,  # dir sector count (0 in v3), FAT, dir, txn
        minifat_start, n_minifat, _ENDOFCHAIN, 0,  # mini FAT, no DIFAT sectors
    ) + struct.pack("<109I", *(list(range(n_fat)) + [_FREESECT] * (109 - n_fat)))

    directory = bytearray()
    for node in entries:
        if node is root:
            kind, size = _ROOT, len(mini_stream)
        elif node.data is None:
            kind, size = _STORAGE, 0
        else:
            kind, size = _STREAM, len(node.data)
        name = (node.name + "\0").encode("utf-16-le")
        if len(name) > 64:
            raise ValueError(f"compound file entry name too long: {node.name!r}")
        start = node.start if kind != _STORAGE else 0
        directory += _DIR_ENTRY.pack(
            name, len(name), kind, node.color, node.left, node.right, node.child,
            bytes(16), 0, 0, 0, start, size,
        )
    unused = _DIR_ENTRY.pack(b"", 0, 0, 0, _NOSTREAM, _NOSTREAM, _NOSTREAM, bytes(16), 0, 0, 0,
                             0, 0)
    directory += unused * (n_dir * 4 - len(entries))

    def padded(data: bytes | bytearray) -> bytes:
        return bytes(data).ljust(sectors(len(data)) * _SECTOR, b"\0")

    body = [
        struct.pack(f"<{len(fat)}I", *fat),
        bytes(directory),
        padded(struct.pack(f"<{len(mini_fat)}I", *mini_fat)),
        padded(mini_stream),
        *(padded(node.data or b"") for node in big),
    ]
    return header + b"".join(body)


def _chain(start: int, count: int) -> list[int]:
    """FAT (or mini FAT) entries for ``count`` contiguous sectors starting at ``start``."""
    return [start + i + 1 for i in range(count - 1)] + ([_ENDOFCHAIN] if count else [])


def _link_siblings(kids: list[int], entries: list[_Node]) -> int:
    """Link sibling entries into a balanced search tree; return the id of its root.

    Splitting at the middle gives a tree whose empty links all sit at depth ``h`` or
    ``h + 1`` (``h = floor(log2(n + 1))``). Coloring the nodes at depth ``h`` red and all
    others black makes a valid red-black tree, as [MS-CFB] 2.6.4 asks.
    """
    ordered = sorted(kids, key=lambda i: entries[i].sort_key())
    red_depth = int(math.log2(len(ordered) + 1)) if ordered else 0

    def build(lo: int, hi: int, depth: int) -> int:
        if lo >= hi:
            return _NOSTREAM
        mid = (lo + hi) // 2
        node = entries[ordered[mid]]
        node.left = build(lo, mid, depth + 1)
        node.right = build(mid + 1, hi, depth + 1)
        node.color = _RED if depth == red_depth else _BLACK
        return ordered[mid]

    return build(0, len(ordered), 0)


def _properties_stream(header: bytes, props: list[tuple[int, int, bytes]]) -> tuple[
    bytes, list[_Node]
]:
    """Build a ``__properties_version1.0`` stream and the streams of its string values.

    ``props`` holds (property id, property type, value): for ``_PT_UNICODE`` the UTF-16LE
    bytes (stored in their own ``__substg1.0_`` stream, the entry giving size + 2 for the
    terminating NUL, [MS-OXMSG] 2.4.2.2), for fixed-size types the 8 inline value bytes.
    """
    entries, streams = bytearray(header), []
    for pid, ptype, value in sorted(props):
        flags = 0x6  # PROPATTR_READABLE | PROPATTR_WRITABLE
        if ptype == _PT_UNICODE:
            inline = struct.pack("<II", len(value) + 2, 0)
            streams.append(_Node(f"__substg1.0_{pid:04X}{ptype:04X}", value))
        else:
            inline = value.ljust(8, b"\0")
        entries += struct.pack("<HHI", ptype, pid, flags) + inline
    return bytes(entries), streams


def write_msg(
    out: Path,
    *,
    subject: str,
    body: str,
    sender_name: str,
    sender_email: str,
    recipient_name: str,
    recipient_email: str,
    sent: dt.datetime = _SENT,
) -> None:
    """Write a minimal Outlook message (IPM.Note, Unicode strings, one recipient)."""

    def text(value: str) -> bytes:
        return value.encode("utf-16-le")

    # FILETIME: 100 ns intervals since 1601-01-01 UTC.
    filetime = int((sent - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)).total_seconds()) * 10**7
    message_props = [
        (0x001A, _PT_UNICODE, text("IPM.Note")),  # PidTagMessageClass
        (0x0037, _PT_UNICODE, text(subject)),  # PidTagSubject
        (0x0039, _PT_SYSTIME, struct.pack("<Q", filetime)),  # PidTagClientSubmitTime
        (0x0C1A, _PT_UNICODE, text(sender_name)),  # PidTagSenderName
        (0x0C1F, _PT_UNICODE, text(sender_email)),  # PidTagSenderEmailAddress
        (0x0E06, _PT_SYSTIME, struct.pack("<Q", filetime)),  # PidTagMessageDeliveryTime
        (0x0E07, _PT_LONG, struct.pack("<I", 0x1)),  # PidTagMessageFlags: mfRead
        (0x1000, _PT_UNICODE, text(body)),  # PidTagBody
        (0x340D, _PT_LONG, struct.pack("<I", 0x00040000)),  # PidTagStoreSupportMask: UNICODE_OK
    ]
    # Top-level message header: 8 reserved bytes, next recipient id, next attachment id,
    # recipient count, attachment count, 8 reserved bytes ([MS-OXMSG] 2.4.1.1).
    root_header = struct.pack("<8xIIII8x", 1, 0, 1, 0)
    root_props, root_streams = _properties_stream(root_header, message_props)

    recipient_props = [
        (0x0C15, _PT_LONG, struct.pack("<I", 1)),  # PidTagRecipientType: To
        (0x3001, _PT_UNICODE, text(recipient_name)),  # PidTagDisplayName
        (0x3003, _PT_UNICODE, text(recipient_email)),  # PidTagEmailAddress
        (0x39FE, _PT_UNICODE, text(recipient_email)),  # PidTagSmtpAddress
    ]
    # Recipient and attachment property streams start with 8 reserved bytes.
    recip_props, recip_streams = _properties_stream(bytes(8), recipient_props)

    root = _Node(
        "Root Entry",
        children=[
            _Node("__properties_version1.0", root_props),
            *root_streams,
            _Node(
                "__recip_version1.0_#00000000",
                children=[_Node("__properties_version1.0", recip_props), *recip_streams],
            ),
            # Named-property mapping storage: Outlook expects it, even when empty
            # (GUID, entry and string streams).
            _Node(
                "__nameid_version1.0",
                children=[
                    _Node("__substg1.0_00020102", b""),
                    _Node("__substg1.0_00030102", b""),
                    _Node("__substg1.0_00040102", b""),
                ],
            ),
        ],
    )
    out.write_bytes(_cfb_bytes(root))

