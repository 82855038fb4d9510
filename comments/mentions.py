"""@mentions in a comment body. Pure.

A mention is ``@`` followed by a username (Django's default characters: letters, digits and
``@.+-_``, up to 150), at the start of the body or after a character that cannot be part of a
word or an e-mail address, so ``mail ada@example.com`` mentions nobody:

    >>> mentioned_usernames("thanks @ada and @bob.smith, cc @ada!")
    ['ada', 'bob.smith']
    >>> mentioned_usernames("write to ada@example.com")
    []

Trailing punctuation that ends a sentence (``.``, ``,``... and a final ``-``) is not part of the
name. Names come back once each, in order of first mention, as written (the service matches them
to users case-insensitively and drops who may not see the thread).
"""

from __future__ import annotations

import re

MAX_USERNAME = 150
MAX_MENTIONS = 20  # a comment pinging a whole team is a broadcast, not a mention

_MENTION = re.compile(rf"(?<![\w@.+\-])@([\w.@+\-]{{1,{MAX_USERNAME}}})")
_TRAILING = ".,+-@"


def mentioned_usernames(body: str) -> list[str]:
    found: dict[str, None] = {}
    for match in _MENTION.finditer(body):
        name = match.group(1).rstrip(_TRAILING)
        if name and name.casefold() not in {n.casefold() for n in found}:
            found[name] = None
        if len(found) == MAX_MENTIONS:
            break
    return list(found)
