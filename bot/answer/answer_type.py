"""Whether a span is the kind of thing its question asks for: a quantity for "how many", a year for "what year".

The reader learned answer types from a few thousand questions and still quotes "89th" for "how much prize
money" or "landslide" for "by how many percentage points" when the article does not say. A finding whose span clearly is not
of the asked kind gets a penalty on its score (calibrated on validation data with the other weights,
train/calibrate.py), so another finding can win or the reader abstains. Only coarse kinds are checked, and
each check errs towards "fits": a missed mismatch costs nothing, a false one costs a right answer.
"""

from __future__ import annotations

import re

_NUMBER_WORDS = (
    r"zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds?|thousands?|"
    r"millions?|billions?|trillions?|dozens?|half|both|several|few|many|multiple|once|twice|thrice|single|"
    r"none|no|nothing|all|a couple|tens|infinite|infinitely|countless|unmanned|free|decades?|centuries|century|"
    r"handful|pair|couple|trio|quartet|majority|most|some|numerous|a number of"
)
_QUANTITY = re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b", re.I)
_ORDINAL = re.compile(r"\b\d+(?:st|nd|rd|th)\b", re.I)
_PERCENT = re.compile(r"%|\bper ?cent|\bpercentage\b", re.I)
_FRACTION = re.compile(r"\b(?:thirds?|quarters?|fifths?|tenths?|majority|minority|most)\b", re.I)
_YEAR = re.compile(r"(?<!\d)\d{3,4}(?!\d)|\bcentur|\b(?:BCE?|AD|CE)\b|\byear\b", re.I)
_MONTHS = r"jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_TIME = re.compile(
    rf"\d|\b(?:(?:{_MONTHS})\w*|(?:mon|tues|wednes|thurs|fri|satur|sun)day|today|tonight|yesterday|tomorrow|"
    r"(?:week|month|year|decade|century|morning|afternoon|evening|night|weekend|spring|summer|fall|autumn|"
    r"winter|season|era|period|age|time|hour|minute|day)s?|ago|since|after|before|during|until|till|when|while|"
    r"earlier|later|recently|now|then|once|soon|early|late|mid|end|beginning|start|eve|christmas|easter|"
    r"thanksgiving|holiday|anniversary)\b",
    re.I,
)
_MONEY = re.compile(
    r"[$€£¥₹]|\b(?:dollars?|euros?|pounds?|yuan|yen|rupees?|cents?|francs?|pesos?|won|usd|eur|gbp|"
    r"millions?|billions?|trillions?|free)\b",
    re.I,
)
# Question words that make a "how much" a sum of money.
_ABOUT_MONEY = re.compile(
    r"\b(?:money|cost|costs|costing|price|priced|paid|pay|pays|spend|spent|worth|raise|raised|fund|funding|"
    r"budget|fine|fined|salary|prize|earn|earned|revenue|sales|loan|debt|fee|fees|compensation|bail|"
    r"settlement|award|awarded|donate|donated)\b",
    re.I,
)

# The question's own "how many" (within its first words), not one inside a clause ("how was it decided how many").
_COUNT = re.compile(r"^\W*(?:[\w,']+\s+){0,3}how many\b", re.I)
_AMOUNT = re.compile(r"^\W*(?:[\w,']+\s+){0,3}how much\b", re.I)
_YEAR_Q = re.compile(r"\b(?:what|which) year\b", re.I)
_AGE_Q = re.compile(r"\bhow old\b|\bat what age\b|\bwhat (?:is|was|were|are) (?:the |his |her |their |its )?(?:\w+ )?age\b",
                    re.I)
# "When" itself is not checked: its answers are as often events ("after the empire fell") as times.
_DATE_Q = re.compile(r"\b(?:what|which) (?:\w+ )?date\b|\b(?:what|which) day\b", re.I)
_PERCENT_Q = re.compile(r"\b(?:what|which) (?:\w+ )?(?:percent|percentage|share|proportion|fraction)\b", re.I)
_BIRTH_YEAR = re.compile(r"\b(?:1[5-9]|20)\d\d\b")  # a year is no age ("born in 1961")
_AGE_WORDS = re.compile(r"\b(?:teen|twenties|thirties|forties)", re.I)


def _quantity(span: str) -> bool:
    """The span states a quantity (not only an ordinal such as "89th")."""
    return bool(_QUANTITY.search(_ORDINAL.sub(" ", span)))


def mismatch(question: str, span: str) -> bool:
    """True when the span clearly is not the kind of answer the question asks for."""
    q = question
    if _COUNT.search(q):
        # A share answers "how many" as often as a count does ("How many residents are under 18?" "23.9%").
        return not _quantity(span)
    if _AMOUNT.search(q):
        # "How much" of anything else is as often a degree ("little", "vast areas") as a number.
        return bool(_ABOUT_MONEY.search(q)) and not (_quantity(span) or _MONEY.search(span))
    if _PERCENT_Q.search(q):
        return not (_PERCENT.search(span) or _QUANTITY.search(span) or _FRACTION.search(span))
    if _YEAR_Q.search(q):
        return not _YEAR.search(span)
    if _AGE_Q.search(q):
        return not (_QUANTITY.search(_BIRTH_YEAR.sub(" ", span)) or _AGE_WORDS.search(span))
    if _DATE_Q.search(q):
        return not _TIME.search(span)
    return False
