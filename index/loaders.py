"""Files -> articles: title, publication date, cleaned text and a stable id."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from index.errors import CorpusMissing

log = logging.getLogger(__name__)

SUFFIXES = {".txt", ".md", ".html", ".htm"}
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Article:
    """One cleaned article, ready to chunk."""

    doc_id: str
    title: str
    date: str | None
    text: str
    content_hash: str


@dataclass(frozen=True)
class LoadWarning:
    """A file that was skipped or read with a fallback, and why."""

    path: str
    message: str


# --- page furniture ---------------------------------------------------------
# Lines that news sites wrap around an article. Each pattern matches a whole line, so an
# article sentence that merely mentions "next" or "breaking news" is never dropped.
_FURNITURE_LINE = re.compile(
    r"""^\s*(?:
        (?:prev|previous|next)\s*(?:post|article|story)?\s*[:：].*      # prev/next navigation
      | breaking\s+news\s*
      | [•·\-\*]?\s*no\s+posts\s+were\s+found\.?\s*
      | your\s+current\s+location\s*[:：].*
      | media\s+center\s*
      | share\s+(?:this|on)\b.{0,40}
      | (?:home|menu|search|subscribe|sign\s+in|log\s+in)\s*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_MEDIA_CONTACT = re.compile(r"^\s*media\s+contacts?\s*:?\s*$", re.IGNORECASE)
# Lines of a press-release contact block: "Company Name: Goknews", "Email: Send Email", ...
_CONTACT_FIELD = re.compile(
    r"^\s*(company(\s+name)?|contact(\s+person)?|e-?mail|phone|tel|country|city|state|address|website|web)\s*:",
    re.IGNORECASE,
)


def clean_text(text: str) -> str:
    """Drop page furniture (navigation, empty widgets, contact blocks) and keep article sentences."""
    out: list[str] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if _MEDIA_CONTACT.match(line):
            # Skip the heading and the contact fields (and blank lines between them).
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or _CONTACT_FIELD.match(lines[j])):
                j += 1
            i = j
            continue
        if not _FURNITURE_LINE.match(line):
            out.append(line.rstrip())
        i += 1
    cleaned = "\n".join(out)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip()


# --- dates -------------------------------------------------------------------
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
            ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
            ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"), ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DATE_PATTERNS = [
    # 2019-07-19, 2019/07/19
    (re.compile(r"\b(\d{4})[-/](\d{1,2})[-/](\d{1,2})\b"), ("y", "m", "d")),
    # January 24, 2019 / April 14 17:05 2023 (a time between day and year, as news sites print it)
    (
        re.compile(
            rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?:\d{{1,2}}:\d{{2}}\s+)?(\d{{4}})\b",
            re.IGNORECASE,
        ),
        ("mon", "d", "y"),
    ),
    # 14 April 2023
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})\.?,?\s+(\d{{4}})\b", re.IGNORECASE), ("d", "mon", "y")),
]


def find_date(text: str, head_chars: int = 2000) -> str | None:
    """The first publication-like date in the article's head, as ISO `YYYY-MM-DD`."""
    head = text[:head_chars]
    best: tuple[int, date] | None = None
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(head):
            parts = dict(zip(order, m.groups()))
            try:
                month = int(parts["m"]) if "m" in parts else _MONTHS[parts["mon"].lower()]
                found = date(int(parts["y"]), month, int(parts["d"]))
            except (ValueError, KeyError):
                continue
            if 1900 <= found.year <= 2100 and (best is None or m.start() < best[0]):
                best = (m.start(), found)
            break
    return best[1].isoformat() if best else None


# --- reading files -----------------------------------------------------------
_SINGLE_BYTE_LATIN = ("cp125", "cp775", "iso8859", "latin", "mac_", "windows-125")


def _decode(raw: bytes, path: str, warnings: list[LoadWarning]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    encoding = best.encoding if best else None
    # On short Western text charset_normalizer often guesses cp1250/cp775 ("naïve" -> "naďve");
    # Windows-1252 is by far the likelier single-byte encoding of an English news page.
    if encoding is None or encoding.lower().replace("_", "-").startswith(_SINGLE_BYTE_LATIN):
        try:
            text = raw.decode("cp1252")
            warnings.append(LoadWarning(path, "not valid UTF-8; decoded as cp1252"))
            return text
        except UnicodeDecodeError:
            encoding = encoding or "latin-1"
    warnings.append(LoadWarning(path, f"not valid UTF-8; decoded as {encoding}"))
    return raw.decode(encoding, errors="replace")


_BLOCKS = ["p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "section",
           "article", "header", "figcaption", "time", "br", "ul", "ol", "table"]


def _html_to_text(html: str) -> tuple[str | None, str]:
    """Title and readable text of an HTML page (BeautifulSoup, lxml parser)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    title = None
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    elif soup.find("h1"):
        title = soup.find("h1").get_text(" ", strip=True)
    for tag in soup(["script", "style", "noscript", "template", "form", "nav", "aside"]):
        tag.decompose()
    # Site headers and footers go, but an article's own <header> holds its headline and date.
    for tag in soup(["header", "footer"]):
        if tag.find_parent(["article", "main"]) is None:
            tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    for br in root.find_all("br"):
        br.replace_with("\n")
    for block in root.find_all(_BLOCKS):
        block.insert_before("\n")
        block.insert_after("\n")
    lines = [" ".join(line.split()) for line in root.get_text().split("\n")]
    text = "\n\n".join(line for line in lines if line)
    return title, text


def _first_line(text: str) -> str:
    for line in text.split("\n"):
        if line.strip():
            return line.strip().lstrip("#").strip()
    return ""


def load_article(path: Path, root: Path, warnings: list[LoadWarning]) -> Article | None:
    """Read one file into an Article, or None (with a warning) when it can't be used."""
    rel = path.relative_to(root).as_posix()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            warnings.append(LoadWarning(rel, f"skipped: larger than {MAX_FILE_BYTES // 2**20} MiB"))
            return None
        raw = path.read_bytes()
    except OSError as exc:
        warnings.append(LoadWarning(rel, f"skipped: unreadable ({exc.strerror or exc})"))
        return None
    if b"\x00" in raw[:8192]:
        warnings.append(LoadWarning(rel, "skipped: looks like a binary file"))
        return None
    text = _decode(raw, rel, warnings)
    if path.suffix.lower() in {".html", ".htm"}:
        title, body = _html_to_text(text)
    else:
        title, body = None, text
    body = clean_text(body)
    if not body.strip():
        warnings.append(LoadWarning(rel, "skipped: empty file"))
        return None
    title = title or _first_line(body) or path.stem
    digest = hashlib.sha256(raw).hexdigest()[:32]
    return Article(doc_id=rel, title=title, date=find_date(body), text=body, content_hash=digest)


def iter_files(root: Path) -> list[Path]:
    """Article files under root, sorted so runs are reproducible."""
    if not root.is_dir():
        raise CorpusMissing(f"No such directory: {root}")
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)  # .git, .ipynb_checkpoints
    )


def load_corpus(root: Path) -> tuple[list[Article], list[LoadWarning]]:
    """Every usable article under root, plus warnings for the files that were skipped or decoded loosely."""
    warnings: list[LoadWarning] = []
    articles = [a for p in iter_files(root) if (a := load_article(p, root, warnings))]
    for w in warnings:
        log.warning("%s: %s", w.path, w.message)
    return articles, warnings


def iter_corpus(root: Path) -> Iterator[Article]:
    """Articles under root one by one (warnings go to the log)."""
    warnings: list[LoadWarning] = []
    for p in iter_files(root):
        article = load_article(p, root, warnings)
        for w in warnings:
            log.warning("%s: %s", w.path, w.message)
        warnings.clear()
        if article:
            yield article
