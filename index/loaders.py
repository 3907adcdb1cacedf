"""Files -> articles: title, publication date, cleaned text and a stable id."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from index.errors import CorpusEmpty, CorpusMissing
from index.sanitize import fix_surrogates, not_language, strip_control

log = logging.getLogger(__name__)

SUFFIXES = {".txt", ".md", ".html", ".htm"}
MAX_FILE_BYTES = 20 * 1024 * 1024
# A title is embedded with every chunk of its article, so it takes room from each chunk's text:
# a first line longer than a headline ever is (a whole paragraph) is text, not a title.
TITLE_MAX_WORDS = 30
TITLE_MAX_CHARS = 250


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


_BOMS = (  # UTF-32 first: its little-endian BOM starts like UTF-16's
    (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"), (b"\xef\xbb\xbf", "utf-8"),
)


def _utf16_without_bom(raw: bytes) -> str | None:
    """UTF-16 text saved without a BOM: mostly-ASCII text has a NUL in every other byte."""
    head = raw[:8192]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    for zeros, encoding in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros > 0.3 * len(head) / 2 and len(raw) % 2 == 0:
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def _decode(raw: bytes, path: str, warnings: list[LoadWarning]) -> str | None:
    """The file's text, or None (with a warning) when it is binary."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                warnings.append(LoadWarning(path, f"skipped: starts like {encoding.upper()} but is not"))
                return None
    if b"\x00" in raw[:8192]:
        text = _utf16_without_bom(raw)
        if text is None:
            warnings.append(LoadWarning(path, "skipped: looks like a binary file"))
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(raw[: 1 << 20]).best()  # the first MiB is plenty to tell the encoding
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


def _heading(line: str) -> str:
    return line.strip().lstrip("#").strip()


def is_title(line: str) -> bool:
    """A line short enough to be a headline (a whole paragraph on the first line is not one)."""
    return 0 < len(line) <= TITLE_MAX_CHARS and len(line.split()) <= TITLE_MAX_WORDS


# A masthead: a short line whose last word names a kind of publication ("Srinagar Magazine",
# "The Daily Herald", "example.com"), printed above the headline by many sites.
_MASTHEAD = re.compile(
    r"^(?:the\s+)?(?:[\w’'&.-]+\s+){0,3}(?:magazine|news|times|daily|post|journal|gazette|herald|tribune|"
    r"telegraph|chronicle|observer|review|weekly|online|network|media|channel|tv|radio|press|wire|today)$"
    r"|^[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|news|info|co|io)(?:\.[a-z]{2})?$",
    re.IGNORECASE,
)


def _is_masthead(line: str) -> bool:
    return bool(_MASTHEAD.match(line)) and all(w[0].isupper() or "." in w for w in line.split())


def _title_from_lines(text: str, head_lines: int = 8) -> str | None:
    """The headline among the first lines: the first line unless it is a masthead or too long for a title."""
    lines = [_heading(line) for line in text.split("\n") if line.strip()][:head_lines]
    if not lines:
        return None
    first = lines[0]
    if not _is_masthead(first):
        return first if is_title(first) else None
    # The headline follows the masthead; a line the page repeats (headline, then the story's own title) is surest.
    # The masthead stays after it, as HTML titles have it ("Headline — Site"): it says who published the story.
    later = [line for line in lines[1:] if is_title(line) and not _is_masthead(line) and len(line.split()) >= 3
             and not line.endswith(".")]
    repeated = [line for line in later if text.count(line) > 1]
    headline = (repeated or later or [None])[0]
    return f"{headline} — {first}" if headline else first


def _clip_title(title: str) -> str:
    """An over-long title (an HTML <title> holding a paragraph) cut at a word boundary."""
    if is_title(title):
        return title
    words = title[:TITLE_MAX_CHARS].split()[:TITLE_MAX_WORDS]
    return " ".join(words[:-1] if len(words) > 1 else words) + "…"


def _doc_id(path: Path, root: Path) -> str:
    # Undecodable bytes in a file name would reach SQLite, JSON and the terminal as lone surrogates.
    return strip_control(fix_surrogates(path.relative_to(root).as_posix()))


def load_article(path: Path, root: Path, warnings: list[LoadWarning]) -> Article | None:
    """Read one file into an Article, or None (with a warning) when it can't be used."""
    rel = _doc_id(path, root)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            warnings.append(LoadWarning(rel, f"skipped: larger than {MAX_FILE_BYTES // 2**20} MiB"))
            return None
        raw = path.read_bytes()
    except OSError as exc:
        warnings.append(LoadWarning(rel, f"skipped: unreadable ({exc.strerror or exc})"))
        return None
    mark = len(warnings)
    text = _decode(raw, rel, warnings)
    if text is None:
        return None
    if path.suffix.lower() in {".html", ".htm"}:
        title, body = _html_to_text(text)  # judged on its text: scripts and data URIs are not prose
    else:
        title, body = None, text
    if (why := not_language(body)) is not None:
        del warnings[mark:]  # "decoded as latin-1" says nothing once the file is skipped: one line per file
        warnings.append(LoadWarning(rel, f"skipped: not text in a language ({why})"))
        return None
    # Escape sequences in an article must never reach a terminal, a Slack message or a report.
    # NFC: files written with decomposed accents ("e" + U+0301) would otherwise never match a question
    # typed with the composed letter, lexically or as a substring of the answer.
    title = strip_control(unicodedata.normalize("NFC", title)) if title else None
    body = clean_text(strip_control(unicodedata.normalize("NFC", body)))
    if not body.strip():
        warnings.append(LoadWarning(rel, "skipped: empty file"))
        return None
    title = _clip_title(" ".join(title.split())) if title else None
    title = title or _title_from_lines(body) or path.stem
    date = find_date(body)
    # The digest covers what the loader made of the file, not only its bytes: a newer loader that reads
    # a different title, date or text from the same file re-indexes that file (and only that one).
    h = hashlib.sha256(raw)
    for part in (title, date or "", body):
        h.update(b"\0" + part.encode("utf-8", "surrogatepass"))
    return Article(doc_id=rel, title=title, date=date, text=body, content_hash=h.hexdigest()[:32])


@dataclass(frozen=True)
class Corpus:
    """The article files a path names: a folder's files, or one file; ids are relative to root."""

    root: Path
    files: tuple[Path, ...]
    single_file: bool = False
    warnings: tuple[LoadWarning, ...] = ()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def _describe(found: Counter) -> str:
    """"3 files (2 .pdf, 1 .docx)" for the files a folder holds."""
    total = sum(found.values())
    kinds = ", ".join(f"{n} {ext or 'without extension'}" for ext, n in found.most_common(4))
    more = ", ..." if len(found) > 4 else ""
    return f"{total} file{'s' if total != 1 else ''} ({kinds}{more})"


def scan(path: Path, follow_symlinks: bool = False) -> Corpus:
    """The article files under path (a folder, or a single file), sorted so runs are reproducible.

    Links to files outside the folder are skipped with a warning unless follow_symlinks: indexing a
    folder must not read whatever a link in it points to.
    """
    path = Path(path)
    supported = ", ".join(sorted(SUFFIXES))
    if path.is_file():
        if path.suffix.lower() not in SUFFIXES:
            raise CorpusEmpty(f"{path} is not an article file: qa indexes {supported} files.")
        return Corpus(path.parent, (path,), single_file=True)
    if not path.is_dir():
        raise CorpusMissing(f"No such file or directory: {path}")
    root = path.resolve()
    files: list[Path] = []
    warnings: list[LoadWarning] = []
    others: Counter = Counter()
    seen_dirs = {root}
    for folder, dirs, names in os.walk(path, followlinks=follow_symlinks):
        here = Path(folder)
        kept = []
        for d in sorted(dirs):
            if d.startswith("."):  # .git, .ipynb_checkpoints
                continue
            sub = here / d
            if sub.is_symlink():
                if not follow_symlinks:
                    if not _inside(sub, root):
                        warnings.append(LoadWarning(_doc_id(sub, path), "skipped: a link to a folder outside "
                                                    "the indexed one (use --follow-symlinks to read it)"))
                    continue
                real = sub.resolve()
                if real in seen_dirs:  # a link back up the tree would loop for ever
                    continue
                seen_dirs.add(real)
            kept.append(d)
        dirs[:] = kept
        for name in sorted(names):
            if name.startswith("."):
                continue
            p = here / name
            suffix = p.suffix.lower()
            if suffix not in SUFFIXES:
                if p.is_file():
                    others[suffix] += 1
                continue
            if not p.is_file():  # a dangling link, a socket, ...
                continue
            if p.is_symlink() and not follow_symlinks and not _inside(p, root):
                warnings.append(LoadWarning(_doc_id(p, path), "skipped: a link to a file outside the indexed "
                                            "folder (use --follow-symlinks to read it)"))
                continue
            files.append(p)
    if not files:
        found = f"it holds {_describe(others)}" if others else "it holds no files"
        raise CorpusEmpty(f"No articles in {path}: {found}; qa indexes {supported} files.")
    files.sort(key=lambda p: p.relative_to(path).as_posix())
    return Corpus(path, tuple(files), warnings=tuple(warnings))


def iter_files(root: Path, follow_symlinks: bool = False) -> list[Path]:
    """Article files under root (a folder or one file), sorted so runs are reproducible."""
    return list(scan(root, follow_symlinks).files)


def _load_guarded(path: Path, root: Path, warnings: list[LoadWarning]) -> Article | None:
    """load_article, with any unexpected failure turned into a warning: one bad file never stops a run."""
    try:
        return load_article(path, root, warnings)
    except Exception as exc:  # noqa: BLE001 - e.g. a parser's RecursionError on absurdly nested HTML
        log.debug("loading %s failed", path, exc_info=True)
        warnings.append(LoadWarning(_doc_id(path, root), f"skipped: could not be read ({type(exc).__name__})"))
        return None


def load_articles(corpus: Corpus) -> tuple[list[Article], list[LoadWarning]]:
    """Every usable article of a scanned corpus, plus warnings for the files skipped or decoded loosely."""
    warnings: list[LoadWarning] = list(corpus.warnings)
    articles = [a for p in corpus.files if (a := _load_guarded(p, corpus.root, warnings))]
    for w in warnings:
        log.warning("%s: %s", w.path, w.message)
    return articles, warnings


def load_corpus(root: Path, follow_symlinks: bool = False) -> tuple[list[Article], list[LoadWarning]]:
    """Every usable article under root (a folder or one file), plus warnings for the files skipped or decoded loosely."""
    return load_articles(scan(Path(root), follow_symlinks))


def iter_corpus(root: Path, follow_symlinks: bool = False) -> Iterator[Article]:
    """Articles under root one by one (warnings go to the log)."""
    corpus = scan(Path(root), follow_symlinks)
    warnings: list[LoadWarning] = list(corpus.warnings)
    for p in corpus.files:
        article = _load_guarded(p, corpus.root, warnings)
        for w in warnings:
            log.warning("%s: %s", w.path, w.message)
        warnings.clear()
        if article:
            yield article
