"""@mentions in comment bodies (comments/mentions.py)."""

from __future__ import annotations

import doctest
import string

from hypothesis import given
from hypothesis import strategies as st

from comments import mentions
from comments.mentions import MAX_MENTIONS, mentioned_usernames

NAME_CHARS = string.ascii_letters + string.digits + "_.@+-"
usernames = st.text(alphabet=NAME_CHARS, min_size=1, max_size=30).filter(
    lambda n: n[-1] not in ".,+-@"
)
separators = st.sampled_from([" ", "\n", "(", ", ", "! ", "\t", "— "])


def test_the_docstring_examples_hold():
    assert doctest.testmod(mentions).failed == 0


@given(usernames, separators)
def test_a_mention_after_a_separator_is_found_as_written(name, separator):
    assert mentioned_usernames(f"hello{separator}@{name}") == [name]


@given(usernames)
def test_a_mention_ending_a_sentence_drops_the_punctuation(name):
    assert mentioned_usernames(f"thanks @{name}.") == [name]


@given(st.text(alphabet=string.ascii_letters, min_size=1, max_size=10), usernames)
def test_an_address_in_a_word_is_no_mention(local, domain):
    assert mentioned_usernames(f"write to {local}@{domain}") == []


@given(st.lists(usernames, min_size=1, max_size=40))
def test_each_name_comes_once_in_order_of_first_mention_up_to_the_cap(names):
    body = " ".join(f"@{n}" for n in names)

    found = mentioned_usernames(body)

    expected: list[str] = []
    for name in names:
        if name.casefold() not in {e.casefold() for e in expected}:
            expected.append(name)
    assert found == expected[:MAX_MENTIONS]


@given(st.text(max_size=300))
def test_any_text_gives_names_that_were_written_after_an_at(body):
    found = mentioned_usernames(body)

    assert len(found) <= MAX_MENTIONS
    assert all(f"@{name}" in body and name for name in found)
