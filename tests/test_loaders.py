"""Files -> articles (index/loaders.py): formats, ids, titles, dates, furniture cleaning, bad input."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from index.loaders import clean_text, find_date, load_corpus

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def by_id(root: Path):
    articles, warnings = load_corpus(root)
    return {a.doc_id: a for a in articles}, {w.path: w.message for w in warnings}


# --- formats, ids, titles ------------------------------------------------------------------------
HTML_PAGE = """<!doctype html>
<html><head><title>Flood warning issued for river towns</title>
<style>.x { color: red }</style><script>var tracking = "SCRIPT_TEXT";</script></head>
<body>
<nav><ul><li>Home</li><li>NAV_TEXT World</li></ul></nav>
<h1>Flood warning issued for river towns</h1>
<p>Officials warned residents of three towns on Sunday that the river could burst its banks.</p>
<p>The warning was published on 3 March 2024 by the regional water authority.</p>
<ul><li>Sandbags are available at the town hall.</li></ul>
<footer>FOOTER_TEXT Copyright 2024</footer>
</body></html>
"""

HTML_NO_TITLE = """<html><body>
<h1>Mayor opens new bridge</h1>
<p>The mayor opened the bridge over the Vltava on Monday.</p>
</body></html>
"""


def test_txt_md_and_html_files_are_loaded(tmp_path):
    write(tmp_path, "plain.txt", "Council approves budget\n\nThe city council approved the 2024 budget on Tuesday.\n")
    write(tmp_path, "notes.md", "# Rates stay on hold\n\nThe central bank kept **rates** unchanged.\n")
    write(tmp_path, "page.html", HTML_PAGE)
    write(tmp_path, "old.htm", HTML_NO_TITLE)
    write(tmp_path, "ignored.pdf", "not an article format")
    write(tmp_path, "ignored.json", '{"title": "nope"}')

    docs, warnings = by_id(tmp_path)

    assert sorted(docs) == ["notes.md", "old.htm", "page.html", "plain.txt"]
    assert warnings == {}
    assert docs["plain.txt"].title == "Council approves budget"
    assert "approved the 2024 budget" in docs["plain.txt"].text
    assert docs["notes.md"].title == "Rates stay on hold"  # the markdown heading marker is not part of it
    assert "kept **rates** unchanged" in docs["notes.md"].text

    page = docs["page.html"]
    assert page.title == "Flood warning issued for river towns"  # from <title>
    assert "Officials warned residents of three towns on Sunday" in page.text
    assert "Sandbags are available at the town hall." in page.text
    assert page.date == "2024-03-03"
    for junk in ("SCRIPT_TEXT", "color: red", "NAV_TEXT", "FOOTER_TEXT", "<p>", "</"):
        assert junk not in page.text, junk

    old = docs["old.htm"]
    assert old.title == "Mayor opens new bridge"  # no <title>: from <h1>
    assert "opened the bridge over the Vltava" in old.text


def test_html_goes_through_beautifulsoup_entities_and_inline_tags(tmp_path):
    write(
        tmp_path,
        "a.html",
        "<html><head><title>Caf&eacute; owners &amp; the city</title></head><body>"
        "<p>Prices at the <b>caf&eacute;</b> rose by&nbsp;5&nbsp;% in <a href='#'>May</a>.</p></body></html>",
    )
    (doc,) = load_corpus(tmp_path)[0]
    assert doc.title == "Café owners & the city"
    assert "caf\u00e9" in doc.text and "rose by" in doc.text and "May" in doc.text
    assert "&eacute;" not in doc.text and "<b>" not in doc.text and "href" not in doc.text


def test_doc_id_is_the_posix_relative_path_including_subfolders(tmp_path):
    write(tmp_path, "2024/03/ecb.txt", "ECB holds rates\n\nThe ECB kept rates at 4%.")
    write(tmp_path, "2024/03/storm.md", "Storm hits coast\n\nA storm flooded the coast.")
    write(tmp_path, "top.txt", "Top story\n\nSomething happened.")
    docs, _ = by_id(tmp_path)
    assert sorted(docs) == ["2024/03/ecb.txt", "2024/03/storm.md", "top.txt"]
    assert all("\\" not in d and not d.startswith("/") for d in docs)


def test_the_same_file_gets_the_same_id_and_hash_wherever_the_corpus_lives(tmp_path):
    for root in ("one", "two"):
        write(tmp_path / root, "sub/a.txt", "Same article\n\nSame body.")
    (a,) = load_corpus(tmp_path / "one")[0]
    (b,) = load_corpus(tmp_path / "two")[0]
    assert (a.doc_id, a.content_hash) == (b.doc_id, b.content_hash) == ("sub/a.txt", a.content_hash)


def test_a_loader_that_reads_another_title_from_the_same_file_changes_its_hash(tmp_path, monkeypatch):
    """So an upgrade whose loader reads titles differently re-indexes the files it reads differently."""
    import index.loaders as loaders

    write(tmp_path, "a.txt", "Srinagar Magazine\n\nDam opens on the river\n\nThe dam opened on Monday.")
    (before,) = load_corpus(tmp_path)[0]
    monkeypatch.setattr(loaders, "_title_from_lines", lambda text, *a, **k: "Another title")
    (after,) = load_corpus(tmp_path)[0]
    assert after.title == "Another title" != before.title
    assert after.content_hash != before.content_hash


def test_hidden_files_and_folders_are_skipped(tmp_path):
    """Editor/VCS leftovers must not become duplicate articles (e.g. Jupyter's checkpoint copies)."""
    write(tmp_path, "story.txt", "Story\n\nThe real article.")
    write(tmp_path, ".draft.txt", "Draft\n\nA hidden file.")
    write(tmp_path, ".ipynb_checkpoints/story-checkpoint.txt", "Story\n\nThe real article.")
    docs, _ = by_id(tmp_path)
    assert sorted(docs) == ["story.txt"]


def test_title_is_the_first_non_empty_line(tmp_path):
    write(tmp_path, "a.txt", "\n\n   \n  Storm closes schools  \nSecond line here.\n\nBody text of the story.")
    (doc,) = load_corpus(tmp_path)[0]
    assert doc.title == "Storm closes schools"


def test_seed_titles_skip_page_furniture():
    docs, warnings = by_id(SEEDS)
    assert warnings == {}
    assert len(docs) == 5
    assert docs["000_c6868c4dda0e85e6.txt"].title == (
        "Tech Innovation Boosts High-Quality Development of Sichuan and Chongqing"
    )
    # "Your current location: ..." and "Media Center" are furniture, so the headline is the first line.
    assert docs["003_1c4934fb60e6f169.txt"].title.startswith("Chen Min’er and Tang Liangzhi Met with Leaders")


# --- dates ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Headline\n\nApril 14\n17:05 2023\n\nThe body.", "2023-04-14"),
        ("Release: Daily Time:2019-07-19 17:30:36\n\nBody.", "2019-07-19"),
        ("At 10:00 on January 24, 2019, a group met.", "2019-01-24"),
        ("Published 14 April 2023 by the desk.", "2023-04-14"),
        ("Sept. 3rd, 2021: markets fell.", "2021-09-03"),
        ("No date here, only 15th to 16th November and May 20th.", None),
        ("Version 2019-13-45 is not a date.", None),
    ],
)
def test_find_date(text, expected):
    assert find_date(text) == expected


def test_the_earliest_date_in_the_head_wins():
    assert find_date("Updated 14 April 2023.\nFirst published 2023-04-01.") == "2023-04-14"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("April 14\n17:05 2023\n\nThe expo opened.", "2023-04-14"),
        ("Time:2019-07-19 17:30:36\n\nLeaders met.", "2019-07-19"),
        ("At 10:00 on January 24, 2019, a group met.", "2019-01-24"),
        ("London, 14 April 2023 - Shares rose.", "2023-04-14"),
        ("Shares rose on Tuesday.", None),
    ],
)
def test_article_dates_from_files(tmp_path, body, expected):
    write(tmp_path, "a.txt", f"Headline\n\n{body}\n")
    (doc,) = load_corpus(tmp_path)[0]
    assert doc.date == expected


def test_seed_dates():
    docs, _ = by_id(SEEDS)
    assert {d: a.date for d, a in docs.items()} == {
        "000_c6868c4dda0e85e6.txt": None,
        "001_e76acc07d88c3c13.txt": None,
        "002_0c73d536360565c7.txt": "2023-04-14",  # "April 14\n17:05 2023"
        "003_1c4934fb60e6f169.txt": "2019-07-19",
        "004_d4eda17714fa30b5.txt": "2019-01-24",
    }


def test_html_article_header_keeps_its_date(tmp_path):
    """<header> inside <article> holds the article's own headline and dateline, not site chrome."""
    write(
        tmp_path,
        "a.html",
        "<html><head><title>Port strike ends</title></head><body>"
        "<header><nav>Site menu</nav></header>"
        "<article><header><h1>Port strike ends</h1><p class='dateline'>14 April 2023</p></header>"
        "<p>Dock workers returned to work after a two-week strike.</p></article>"
        "</body></html>",
    )
    (doc,) = load_corpus(tmp_path)[0]
    assert "returned to work" in doc.text
    assert doc.date == "2023-04-14"


def test_html_text_outside_paragraph_tags_is_kept(tmp_path):
    """Many CMSs put the story in <div>s with <br>; a related-links list must not replace it."""
    write(
        tmp_path,
        "a.html",
        "<html><head><title>Bridge reopens</title></head><body>"
        "<div class='story'>The bridge reopened on Monday after repairs.<br><br>"
        "Traffic returned to normal within an hour.</div>"
        "<div class='related'><ul><li>Other story</li></ul></div>"
        "</body></html>",
    )
    (doc,) = load_corpus(tmp_path)[0]
    assert "The bridge reopened on Monday after repairs." in doc.text
    assert "Traffic returned to normal within an hour." in doc.text


# --- page furniture ------------------------------------------------------------------------------
SEED_FURNITURE = [
    "Prev: Jointly Promoting High-Quality Development of Industry and Finance",
    "Prev: Happy Children's Day",
    "Next: Report on World Class Enterprises",
    "Next: Chengdu Contemporary Juvenile and CHG",
    "Breaking News",
    "No posts were found",
    "Your current location: Hom Exhibition News",
    "Media Center",
    "Media Contact",
    "Company Name: Goknews",
    "Contact Person: Bella",
    "Email: Send Email",
    "Country: United States",
]


def is_furniture(line: str) -> bool:
    s = line.strip().lstrip("•· ").strip()
    return any(s.startswith(j) for j in SEED_FURNITURE)


def test_seed_furniture_is_present_in_the_raw_files():
    raw = "\n".join(p.read_text(encoding="utf-8") for p in SEEDS.glob("*.txt"))
    for junk in SEED_FURNITURE:
        assert junk in raw, junk  # so the next test really checks something


def test_seed_furniture_is_removed():
    docs, _ = by_id(SEEDS)
    for doc_id, article in docs.items():
        for line in article.text.splitlines():
            assert not is_furniture(line), (doc_id, line)
            assert not line.lower().startswith(("prev:", "next:")), (doc_id, line)


def test_seed_article_sentences_are_kept():
    docs, _ = by_id(SEEDS)
    assert docs["000_c6868c4dda0e85e6.txt"].text.endswith(
        "making contributions from the overseas Chinese community."
    )
    assert docs["001_e76acc07d88c3c13.txt"].text.endswith("Chengdu-Chongqing Twin Cities Economic Circle.")
    assert docs["002_0c73d536360565c7.txt"].text.endswith("through pioneering ventures and perseverance.")
    assert "A slew of high-profile agreement singed" in docs["002_0c73d536360565c7.txt"].text
    assert docs["003_1c4934fb60e6f169.txt"].text.endswith("Source: Chongqing Daily, Chongqing TV Station")
    # Every line of every seed that is not furniture is still there, verbatim.
    for path in SEEDS.glob("*.txt"):
        kept = docs[path.name].text
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not is_furniture(line):
                assert line.strip() in kept, (path.name, line)


CRAFTED = """Local firm plans expansion

Breaking News
• No posts were found
Your current location: Home > Business > Local

March 2 2024

The company said it will hire 200 people next year, its chief executive said.
Next year, the firm expects revenue to double.
Analysts called the plan breaking news for the region's economy.
Breaking news of the deal lifted shares by 4%.
Contact with suppliers was described as excellent in prose by the manager.
Readers can contact the press office for details: the office answers within a day.
Previously, the firm employed 50 people.
The next article in this series will cover the harbour.

Media Contact
Company Name: Example Corp

Contact Person: Jane Doe
Email: Send Email
Phone: +1 555 0100
Country: United States
Website: https://example.com

The firm was founded in 1999.

Prev: An older story about the harbour
Next: A newer story about the port
Share this article
"""


def test_crafted_furniture_is_removed_and_prose_kept(tmp_path):
    write(tmp_path, "crafted.txt", CRAFTED)
    (doc,) = load_corpus(tmp_path)[0]
    text = doc.text
    for kept in [
        "Local firm plans expansion",
        "The company said it will hire 200 people next year, its chief executive said.",
        "Next year, the firm expects revenue to double.",
        "Analysts called the plan breaking news for the region's economy.",
        "Breaking news of the deal lifted shares by 4%.",
        "Contact with suppliers was described as excellent in prose by the manager.",
        "Readers can contact the press office for details: the office answers within a day.",
        "Previously, the firm employed 50 people.",
        "The next article in this series will cover the harbour.",
        "The firm was founded in 1999.",
    ]:
        assert kept in text, kept
    for gone in [
        "Breaking News\n",
        "No posts were found",
        "Your current location",
        "Media Contact",
        "Example Corp",
        "Jane Doe",
        "Send Email",
        "555 0100",
        "United States",
        "example.com",
        "An older story",
        "A newer story",
        "Share this article",
    ]:
        assert gone not in text + "\n", gone
    assert doc.title == "Local firm plans expansion"
    assert doc.date == "2024-03-02"
    assert "\n\n\n" not in text


def test_clean_text_keeps_lines_that_only_start_like_furniture():
    text = "Home prices rose 5% this year.\nSearch teams found the hikers.\nNext steps: the council votes in May."
    cleaned = clean_text(text)
    assert "Home prices rose 5% this year." in cleaned
    assert "Search teams found the hikers." in cleaned
    assert "Next steps: the council votes in May." in cleaned


# --- bad input -----------------------------------------------------------------------------------
GOOD = "Good article\n\nThis one loads fine.\n"


# Root reads files whatever their mode, through CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH. As root (CI), the
# loader runs in a child process that has dropped both from its bounding set and re-executed, so it holds
# neither: for it, a mode-000 file is as unreadable as for any user.
LOAD_WITHOUT_DAC_CAPS = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        sys.exit(f"cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}")
os.execv(sys.executable, [sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
"""
LOAD = r"""
import json, sys
from pathlib import Path
from index.loaders import load_corpus
caps = [l for l in open("/proc/self/status") if l.startswith("CapEff:")][0].split()[1]
assert int(caps, 16) & 0b110 == 0, caps  # no CAP_DAC_OVERRIDE (1), no CAP_DAC_READ_SEARCH (2)
articles, warnings = load_corpus(Path(sys.argv[1]))
print(json.dumps([[a.doc_id for a in articles], {w.path: w.message for w in warnings}]))
"""


def _load_as_a_user_without_dac_override(root: Path):
    """by_id(root) in a process that file modes apply to, even when this one runs as root."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return by_id(root)
    out = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_DAC_CAPS, LOAD, str(root)], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    ids, warnings = json.loads(out.stdout)
    return dict.fromkeys(ids), warnings


def test_unreadable_file_is_skipped_with_a_warning(tmp_path):
    write(tmp_path, "good.txt", GOOD)
    locked = write(tmp_path, "locked.txt", "Locked\n\nSecret.")
    locked.chmod(0)
    try:
        docs, warnings = _load_as_a_user_without_dac_override(tmp_path)
    finally:
        locked.chmod(0o644)
    assert sorted(docs) == ["good.txt"]
    assert "unreadable" in warnings["locked.txt"]


def _proc_mem_read_fails() -> bool:
    try:
        with open("/proc/self/mem", "rb") as f:
            f.read(1)
    except OSError:
        return True
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _proc_mem_read_fails(), reason="needs Linux /proc")
def test_file_that_fails_to_read_is_skipped_with_a_warning_even_as_root(tmp_path):
    """A .txt that is a regular file by stat() but whose read() fails (EIO) for every user, root included."""
    write(tmp_path, "a_good.txt", GOOD)
    (tmp_path / "broken.txt").symlink_to("/proc/self/mem")
    write(tmp_path, "z_good.txt", GOOD)
    articles, warnings = load_corpus(tmp_path, follow_symlinks=True)  # the link points outside the folder
    assert sorted(a.doc_id for a in articles) == ["a_good.txt", "z_good.txt"]
    assert "unreadable" in {w.path: w.message for w in warnings}["broken.txt"]


def test_directories_and_dangling_symlinks_named_like_articles_do_not_stop_the_run(tmp_path):
    write(tmp_path, "a_good.txt", GOOD)
    (tmp_path / "folder.txt").mkdir()
    write(tmp_path, "folder.txt/inner.txt", "Inner\n\nAn article inside a folder named like a file.")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    write(tmp_path, "z_good.txt", GOOD)
    docs, _ = by_id(tmp_path)
    assert sorted(docs) == ["a_good.txt", "folder.txt/inner.txt", "z_good.txt"]


def test_binary_file_is_skipped_with_a_warning(tmp_path):
    write(tmp_path, "a_good.txt", GOOD)
    write(tmp_path, "image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    write(tmp_path, "z_good.txt", GOOD)
    docs, warnings = by_id(tmp_path)
    assert sorted(docs) == ["a_good.txt", "z_good.txt"]
    assert "binary" in warnings["image.txt"]


CP1252_TEXT = (
    "Café owners protest new rules\n\n"
    "The café association said the “naïve” plans would hurt business; prices rose 5€ on 14 April 2023.\n"
    "Señor García’s résumé — “über-important”, he said — was read aloud.\n"
)
LATIN1_TEXT = "Résumé of the délégué\n\nLe président a parlé à la réunion. Señor Müller était là. Naïve façade.\n"


@pytest.mark.parametrize("encoding, text", [("cp1252", CP1252_TEXT), ("latin-1", LATIN1_TEXT)], ids=["cp1252", "latin-1"])
def test_non_utf8_file_is_decoded_with_a_warning_naming_it(tmp_path, caplog, encoding, text):
    write(tmp_path, "a_good.txt", GOOD)
    write(tmp_path, f"legacy/{encoding}.txt", text.encode(encoding))
    with caplog.at_level(logging.WARNING, logger="index.loaders"):
        docs, warnings = by_id(tmp_path)
    rel = f"legacy/{encoding}.txt"
    assert sorted(docs) == ["a_good.txt", rel]
    assert "UTF-8" in warnings[rel]
    assert any(rel in r.getMessage() for r in caplog.records)
    assert docs[rel].text == text.strip()  # decoded correctly, not just "without crashing"
    assert docs[rel].title == text.splitlines()[0]


def test_utf8_with_bom_is_not_a_legacy_encoding(tmp_path):
    write(tmp_path, "bom.txt", "\ufeffCafé news\n\nThe café opened.".encode("utf-8"))
    docs, warnings = by_id(tmp_path)
    assert warnings == {}
    assert docs["bom.txt"].title == "Café news"


@pytest.mark.parametrize(
    "content", ["", "   \n\n\t\n", "Breaking News\n• No posts were found\n"], ids=["empty", "blank", "only-furniture"]
)
def test_empty_file_is_skipped_with_a_warning_and_the_run_goes_on(tmp_path, caplog, content):
    write(tmp_path, "a_good.txt", GOOD)
    write(tmp_path, "empty.txt", content)
    write(tmp_path, "z_good.txt", GOOD)
    with caplog.at_level(logging.WARNING, logger="index.loaders"):
        docs, warnings = by_id(tmp_path)
    assert sorted(docs) == ["a_good.txt", "z_good.txt"]
    assert "empty" in warnings["empty.txt"]
    assert any("empty.txt" in r.getMessage() for r in caplog.records)


def test_many_bad_files_in_one_corpus(tmp_path):
    write(tmp_path, "a.txt", GOOD)
    write(tmp_path, "b/empty.md", "")
    write(tmp_path, "b/bin.html", b"\x00\x01\x02binary")
    write(tmp_path, "c/legacy.txt", CP1252_TEXT.encode("cp1252"))
    write(tmp_path, "d.md", "# Last one\n\nStill loaded.")
    docs, warnings = by_id(tmp_path)
    assert sorted(docs) == ["a.txt", "c/legacy.txt", "d.md"]
    assert sorted(warnings) == ["b/bin.html", "b/empty.md", "c/legacy.txt"]


def test_missing_corpus_directory_is_a_user_error(tmp_path):
    from index.errors import CorpusMissing, QAError

    with pytest.raises(CorpusMissing) as err:
        load_corpus(tmp_path / "nope")
    assert isinstance(err.value, QAError)
    assert "nope" in err.value.user_message


# --- paths: one file, empty folders, links -----------------------------------------------------------
def test_a_single_file_path_loads_that_file_alone(tmp_path):
    write(tmp_path, "news/a.txt", GOOD)
    write(tmp_path, "news/b.txt", "Other\n\nAnother article.")
    (doc,), warnings = load_corpus(tmp_path / "news" / "a.txt")
    assert (doc.doc_id, doc.title, warnings) == ("a.txt", "Good article", [])


@pytest.mark.parametrize(
    "files, expected",
    [([], "holds no files"), (["a.pdf", "b.pdf", "c.docx", "notes"], "4 files (2 .pdf, 1 .docx, 1 without extension)")],
    ids=["empty", "unsupported"],
)
def test_a_folder_without_articles_is_an_error_naming_what_it_holds(tmp_path, files, expected):
    from index.errors import CorpusEmpty, QAError

    (tmp_path / "in").mkdir()
    for name in files:
        write(tmp_path / "in", name, "x")
    with pytest.raises(CorpusEmpty) as err:
        load_corpus(tmp_path / "in")
    assert isinstance(err.value, QAError)
    assert expected in err.value.user_message and ".txt" in err.value.user_message
    write(tmp_path, "file.pdf", "x")
    with pytest.raises(CorpusEmpty, match="not an article file"):
        load_corpus(tmp_path / "file.pdf")


def test_links_to_files_outside_the_folder_are_skipped_unless_asked(tmp_path):
    write(tmp_path, "secret/passwords.txt", "Passwords\n\nThe root password is hunter2.")
    write(tmp_path, "corpus/a.txt", GOOD)
    (tmp_path / "corpus" / "leak.txt").symlink_to(tmp_path / "secret" / "passwords.txt")
    (tmp_path / "corpus" / "leakdir").symlink_to(tmp_path / "secret")
    (tmp_path / "corpus" / "alias.txt").symlink_to(tmp_path / "corpus" / "a.txt")  # inside: fine
    docs, warnings = by_id(tmp_path / "corpus")
    assert sorted(docs) == ["a.txt", "alias.txt"]
    assert "outside" in warnings["leak.txt"] and "--follow-symlinks" in warnings["leak.txt"]
    assert "outside" in warnings["leakdir"]
    followed, _ = load_corpus(tmp_path / "corpus", follow_symlinks=True)
    assert sorted(a.doc_id for a in followed) == ["a.txt", "alias.txt", "leak.txt", "leakdir/passwords.txt"]


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse undecodable names")
def test_an_undecodable_file_name_gets_a_printable_id(tmp_path):
    (tmp_path / os.fsdecode(b"caf\xe9.txt")).write_text(GOOD, encoding="utf-8")
    (doc,) = load_corpus(tmp_path)[0]
    assert doc.doc_id == "caf\ufffd.txt"
    doc.doc_id.encode("utf-8")  # no lone surrogates left to break SQLite, JSON or the terminal


# --- titles ----------------------------------------------------------------------------------------------
def test_a_long_first_line_is_text_not_a_title(tmp_path):
    paragraph = " ".join(f"word{i}" for i in range(160)) + "."
    write(tmp_path, "long_first.txt", paragraph + "\n\nSecond paragraph.")
    (doc,) = load_corpus(tmp_path)[0]
    assert doc.title == "long_first"
    assert doc.text.startswith("word0 word1")  # still part of the text


def test_an_over_long_html_title_is_clipped(tmp_path):
    write(tmp_path, "a.html", f"<html><head><title>{'Very long title ' * 40}</title></head><body><p>{GOOD}</p></body></html>")
    (doc,) = load_corpus(tmp_path)[0]
    assert len(doc.title) <= 251 and doc.title.endswith("…") and len(doc.title.split()) <= 30


def test_a_masthead_is_not_the_title_the_headline_below_it_is():
    docs, _ = by_id(SEEDS)
    title = docs["002_0c73d536360565c7.txt"].title  # before: "Srinagar Magazine"
    assert title.startswith("High-profile deals, world debuts") and title.endswith(" — Srinagar Magazine")


@pytest.mark.parametrize("masthead", ["Srinagar Magazine", "The Daily Herald", "example.com"])
def test_masthead_lines_fall_back_to_the_headline(tmp_path, masthead):
    write(tmp_path, "a.txt", f"{masthead}\n\nDam opens on the river\n\nThe dam opened on Monday.\n")
    (doc,) = load_corpus(tmp_path)[0]
    assert doc.title == f"Dam opens on the river — {masthead}"


# --- noise, encodings, control characters ------------------------------------------------------------------
def _random_bytes(n: int, alphabet: range | list[int]) -> bytes:
    import random

    rng = random.Random(7)
    return bytes(rng.choice(alphabet) for _ in range(n))


@pytest.mark.parametrize(
    "content",
    [
        _random_bytes(5000, range(1, 256)),
        _random_bytes(5000, [b for b in range(32, 256) if b not in (0x7F, 0x81, 0x8D, 0x8F, 0x90, 0x9D)]),
        _random_bytes(5000, range(32, 127)),
        __import__("base64").b64encode(_random_bytes(4000, range(256))),
    ],
    ids=["random-bytes", "random-no-controls", "random-ascii", "base64"],
)
def test_text_that_is_not_language_is_skipped_with_a_warning(tmp_path, content):
    write(tmp_path, "a_good.txt", GOOD)
    write(tmp_path, "noise.txt", content)
    articles, warnings = load_corpus(tmp_path)
    assert [a.doc_id for a in articles] == ["a_good.txt"]
    assert [(w.path, "not text in a language" in w.message) for w in warnings] == [("noise.txt", True)]  # one line


@pytest.mark.parametrize(
    "text",
    [
        "中国新闻网北京3月5日电 十四届全国人大二次会议在人民大会堂开幕。国务院总理作政府工作报告，提出今年经济增长目标。",
        "Президент встретился с министрами в понедельник, сообщает агентство. Обсуждались бюджет и цены на энергию.",
        "Markets\n\nAAPL 182.31 +1.2%  MSFT 402.10 -0.3%  GOOG 141.80 +0.8%. Shares closed higher on Tuesday.",
    ],
    ids=["chinese", "russian", "tickers"],
)
def test_real_text_in_any_script_is_kept(tmp_path, text):
    write(tmp_path, "a.txt", text * 3)
    docs, warnings = by_id(tmp_path)
    assert list(docs) == ["a.txt"] and warnings == {}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_decoded(tmp_path, encoding):
    text = "Café reopens\n\nThe café on Main Street reopened on 2 May 2024 after the flood.\n"
    raw = text.encode(encoding)
    if encoding == "utf-16-le":
        raw = b"\xff\xfe" + raw  # with a BOM; "utf-16-be" stays without one
    write(tmp_path, "a.txt", raw)
    docs, warnings = by_id(tmp_path)
    assert docs["a.txt"].title == "Café reopens" and docs["a.txt"].date == "2024-05-02"
    assert warnings == {}


def test_escape_sequences_in_articles_are_removed_at_load_time(tmp_path):
    write(tmp_path, "a.txt", "Storm \x1b]0;pwned\x07hits\x1b[2J coast\n\nWinds \x1b[31mrose\x1b[0m to 90 km/h.\x07\r\nDone.")
    write(tmp_path, "b.html", "<html><title>Bad\x1b[5m title</title><body><p>Hidden\x1b[8m text here.</p></body></html>")
    docs, _ = by_id(tmp_path)
    assert docs["a.txt"].title == "Storm hits coast"
    assert docs["a.txt"].text.endswith("Winds rose to 90 km/h.\nDone.")
    assert docs["b.html"].title == "Bad title" and "Hidden text here." in docs["b.html"].text
    for doc in docs.values():
        assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in doc.title + doc.text)


def test_decomposed_accents_are_composed_at_load_time(tmp_path):
    """A file written in NFD ("e" + U+0301) must match a question typed with the composed letter."""
    write(tmp_path, "a.txt", "Euge\u0301nie's crown found\n\nThe crown of Empress Euge\u0301nie was found outside.")
    docs, _ = by_id(tmp_path)
    assert docs["a.txt"].title == "Eug\u00e9nie's crown found"
    assert "Empress Eug\u00e9nie was" in docs["a.txt"].text and "\u0301" not in docs["a.txt"].text
