"""Offline follow-ups: a question with a pronoun made standalone from the previous turn, without an LLM.

A pronoun is replaced by the most recent mention of its kind: he/she/him/his/her -> a person ("the
president of Continental Hope Group", "Wang Lei"), it/its -> an organisation or thing ("Continental
Hope Group"). The previous turn is the previous standalone question, so what one follow-up resolved
stays available to the next. When nothing of the right kind was mentioned, the previous question is
appended instead: a wrong substitution ("Which meeting was Continental Hope Group invited to?") would
send retrieval after the wrong thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.lexical import STOPWORDS

_PRONOUN = re.compile(r"\b(it|its|it's|they|them|their|theirs|he|him|his|she|her|hers|this|that|these|those|there)\b",
                      re.I)
_POSSESSIVE = {"its", "their", "his", "her", "theirs", "hers"}
_KINDS = {"he": "person", "him": "person", "his": "person", "she": "person", "her": "person", "hers": "person",
          "it": "thing", "its": "thing", "it's": "thing"}  # the others (they, this, there, ...) take any kind
_ENTITY = re.compile(r"\b[A-Z][\w’'&.-]*(?:\s+(?:of\s+|the\s+|and\s+)?[A-Z][\w’'&.-]*)*")
_FUNCTION_WORDS = set(STOPWORDS) | {"and", "but", "so", "or", "also", "then", "now", "please", "ok", "okay"}
_QUESTION_WORDS = {"Who", "What", "When", "Where", "Which", "Why", "How", "Whose", "Did", "Does", "Do", "Is", "Are",
                   "Was", "Were", "Can", "Could", "Tell", "Name", "List", "The", "A", "An", "In", "At", "On"}
# Words that make a capitalised phrase an organisation, a place or a thing rather than a person's name.
_NOT_A_PERSON = set("""group company co corp corporation inc ltd limited association committee bank university college
    school government council agency ministry department office institute foundation party bureau commission
    technology technologies tech holdings club society federation union organization organisation network news
    times daily magazine post journal media television tv radio city province county state district street road
    island river lake mountain bay airport station park square port zone center centre hospital court army navy
    force police exchange market fund trust industry industries group's conference forum summit expo meeting
    republic kingdom china chinese america american europe european""".split())
_ROLES = (r"president|vice[\s-]president|ceo|chief\s+executive(?:\s+officer)?|chairman|chairwoman|chairperson|chair|"
          r"founder|co-founder|director|general\s+manager|manager|secretary|mayor|minister|governor|head|leader|"
          r"spokesperson|spokesman|spokeswoman|ambassador|deputy|academician|professor|editor|owner|"
          r"commander|coach|captain|prime\s+minister|premier|senator|governor")
# "the president of Continental Hope Group", "the CEO", "the former mayor of Chengdu": a person by role.
_ROLE_PHRASE = re.compile(
    rf"\b(?i:the\s+(?:(?:former|new|current|deputy|vice|acting|executive)\s+)*(?:{_ROLES}))\b"
    r"(?:\s+(?i:of|at|for)\s+(?:the\s+)?[A-Z][\w’'&.-]*(?:\s+(?:of\s+|the\s+|and\s+)?[A-Z][\w’'&.-]*)*)?"
)


@dataclass(frozen=True)
class Mention:
    """Something a question names, where, and whether it is a person or a thing."""

    phrase: str
    kind: str  # "person" or "thing"
    start: int


def _skippable(word: str) -> bool:
    """Sentence-initial words that are capitalised but name nothing: "What's", "And", "Also"."""
    base = word.replace("’", "'").split("'")[0]
    return base in _QUESTION_WORDS or base.lower() in _FUNCTION_WORDS


def _entities(text: str) -> list[tuple[str, int]]:
    """Capitalised phrases of text (question words trimmed off their front), with their offsets."""
    out = []
    for m in _ENTITY.finditer(text):
        words = m.group(0).split()
        while words and _skippable(words[0]):
            words = words[1:]
        phrase = " ".join(words).strip(" ?.,")
        if phrase:
            out.append((phrase, m.start() + m.group(0).rfind(words[0])))
    return out


def subject_of(question: str) -> str | None:
    """The named subject of a question: its first capitalised phrase that isn't a question word."""
    found = _entities(question)
    return found[0][0] if found else None


def _looks_like_a_name(phrase: str) -> bool:
    """Two or three capitalised words with no organisation or place word: "Wang Lei", "Chen Min’er"."""
    words = phrase.replace("’", "'").split()
    if not 2 <= len(words) <= 3:
        return False
    return all(w[0].isupper() and w.split("'")[0].isalpha() for w in words) and \
        not any(w.lower().strip(".") in _NOT_A_PERSON for w in words)


_LEADING_ROLE = re.compile(rf"^(?i:(?:{_ROLES}))(?:\s+(?i:of|at|for)\s+(?:the\s+)?|$)")


def mentions(text: str) -> list[Mention]:
    """People and things text names, in order: role phrases and names are people, the rest things."""
    found = [Mention(m.group(0), "person", m.start()) for m in _ROLE_PHRASE.finditer(text)]
    for phrase, start in _entities(text):
        # "CEO of ADASpace" is capitalised too: the role belongs to the person, the rest is the thing.
        role = _LEADING_ROLE.match(phrase)
        if role:
            phrase, start = phrase[role.end() :], start + role.end()
        if phrase:
            found.append(Mention(phrase, "person" if _looks_like_a_name(phrase) else "thing", start))
    return sorted(found, key=lambda m: m.start)


def antecedent(pronoun: str, previous: str) -> str | None:
    """What the pronoun refers to in the previous question: its subject of the pronoun's kind, if any."""
    kind = _KINDS.get(pronoun.lower())
    candidates = [m for m in mentions(previous) if kind is None or m.kind == kind]
    if kind is None:
        # they, this, there, ...: the subject, whatever its kind (a thing before the person holding a role in it).
        things = [m for m in candidates if m.kind == "thing"]
        candidates = things or candidates
    return candidates[0].phrase if candidates else None


def carry_subject(question: str, previous: str) -> str:
    """A follow-up made standalone without an LLM: its pronoun replaced by what it refers to in the previous turn."""
    pronoun = _PRONOUN.search(question)
    if pronoun:
        referent = antecedent(pronoun.group(0), previous)
        if not referent:
            return f"{question} ({previous})"
        possessive = pronoun.group(0).lower() in _POSSESSIVE
        return question[: pronoun.start()] + (f"{referent}'s" if possessive else referent) + question[pronoun.end() :]
    subject = subject_of(previous)
    if subject and len(question.split()) <= 4 and not subject_of(question):
        return f"{question} ({subject})"  # "And the date?" is too short to stand alone
    return question
