"""bot/answer/answer_type.py: a span that clearly is not the kind of answer asked for, and leniency elsewhere."""

from __future__ import annotations

import pytest

from bot.answer.answer_type import mismatch


@pytest.mark.parametrize("question, span", [
    ("How many seats did the party win?", "a landslide"),  # no number at all
    ("By how many points did she win the race?", "the incumbent"),
    ("How much prize money did the winner earn?", "89th"),  # an ordinal, not an amount
    ("How much did the new bridge cost?", "the city council"),
    ("In what year did the plant close?", "last spring"),
    ("What was the average age of the patients?", "By 2024"),  # a year is not an age
    ("On what date did the fire begin?", "the Grand Canyon Lodge"),
    ("What percentage of voters backed the plan?", "the governor"),
])
def test_mismatch__a_span_of_another_kind(question, span):
    assert mismatch(question, span)


@pytest.mark.parametrize("question, span", [
    ("How many people died in the quake?", "at least 95"),
    ("How many of her seven medals were gold?", "two"),
    ("How many seats did the party win?", "a dozen"),
    ("By how many percentage points did she win?", "9 percentage points"),
    ("How much did prices rise last year?", "20%"),  # a share is an amount
    ("How much money has the startup raised?", "$6 million"),
    ("How much was the fine?", "1.2 billion euros"),
    ("In what year did the plant close?", "2011"),
    ("How old was the driver?", "19"),
    ("What new execution date did the court set?", "Tuesday"),
    ("How many residents are under 18?", "23.9%"),  # a share answers "how many" too
    ("How many years did he serve?", "a decade"),
    ("What year did the plant reopen?", "the following year"),
    ("How much support does the plan have?", "little"),  # "how much" of anything but money: a degree
    ("How much does a trainee earn?", "20,427"),  # the currency left out
    ("How was it decided how many seats each party gets?", "by its vote share"),  # not the question's own
    ("When did the strike end?", "the union leader"),  # "when" is not checked: answers are often events
    ("What percentage of voters backed the plan?", "a third"),
    ("Who won the final?", "the home side"),  # people and most other kinds are not checked
    ("What score did he make on the 13th hole?", "double bogey"),
    ("What two charges was she charged with?", "two felonies"),
])
def test_mismatch__lenient_where_the_span_may_be_the_asked_kind(question, span):
    assert not mismatch(question, span)
