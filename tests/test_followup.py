"""Offline follow-ups (bot/followup.py): a pronoun takes the most recent mention of its kind."""

from __future__ import annotations

import pytest

from bot.followup import antecedent, carry_subject, mentions, subject_of

PRESIDENT = "Who is the president of Continental Hope Group?"


def test_he_after_a_question_about_a_person_is_that_person_not_the_organisation():
    # Guards against: "Which meeting was Continental Hope Group invited to?"
    assert carry_subject("Which meeting was he invited to?", PRESIDENT) == \
        "Which meeting was the president of Continental Hope Group invited to?"


def test_it_after_the_same_question_is_the_organisation():
    assert carry_subject("When was its science and technology association established?", PRESIDENT) == \
        "When was Continental Hope Group's science and technology association established?"
    assert carry_subject("When was it founded?", PRESIDENT) == "When was Continental Hope Group founded?"


@pytest.mark.parametrize(
    "question, previous, expected",
    [
        ("What did she announce?", "Did Qitan Technology hire Chen Min’er?", "What did Chen Min’er announce?"),
        ("Where is it based?", "Did Qitan Technology hire Chen Min’er?", "Where is Qitan Technology based?"),
        ("What is his title?", "What did Wang Lei say about ADASpace?", "What is Wang Lei's title?"),
        ("Who founded it?", "What did Wang Lei say about ADASpace?", "Who founded ADASpace?"),
        ("Who runs it?", "Who is the CEO of ADASpace?", "Who runs ADASpace?"),
        ("What did he praise?", "Who is the CEO of ADASpace?", "What did the CEO of ADASpace praise?"),
    ],
)
def test_each_pronoun_takes_the_mention_of_its_kind(question, previous, expected):
    assert carry_subject(question, previous) == expected


def test_a_pronoun_with_nothing_of_its_kind_appends_the_previous_question():
    # "it" cannot be Wang Lei, and "he" cannot be a company: carry the whole question instead.
    assert carry_subject("When was it founded?", "Who is Wang Lei?") == "When was it founded? (Who is Wang Lei?)"
    assert carry_subject("Where was he born?", "When was Qitan Technology founded?") == \
        "Where was he born? (When was Qitan Technology founded?)"


def test_a_resolved_follow_up_keeps_its_referents_for_the_next_one():
    second = carry_subject("Which meeting was he invited to?", PRESIDENT)
    assert carry_subject("When was it founded?", second) == "When was Continental Hope Group founded?"


def test_mentions_know_people_from_things():
    kinds = {m.phrase: m.kind for m in mentions("Did Wang Lei, the CEO of ADASpace, meet Hong Kong Exchange staff?")}
    assert kinds["Wang Lei"] == "person" and kinds["the CEO of ADASpace"] == "person"
    assert kinds["ADASpace"] == "thing" and kinds["Hong Kong Exchange"] == "thing"
    assert antecedent("they", PRESIDENT) == "Continental Hope Group"


def test_subject_of_is_unchanged():
    assert subject_of(PRESIDENT) == "Continental Hope Group"
    assert subject_of("What's the product ADASpace debuted?") == "ADASpace"
    assert subject_of("how many people came?") is None
