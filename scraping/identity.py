"""Who is fetching: the User-Agent every LogoGAN request sends, and the sites that insist on a contact in it."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from infra.errors import UserError

CONTACT_ENV = "LOGOGAN_CONTACT"
# Wikimedia's User-Agent policy blocks clients that give no way to reach their operator.
WIKIMEDIA_DOMAINS = ("wikimedia.org", "wikipedia.org", "mediawiki.org", "wikidata.org")


def user_agent(contact: str | None) -> str:
    """``LogoGAN/1 (contact)``: tool name and version plus a way to reach whoever runs it, as Wikimedia asks."""
    return f"LogoGAN/1 ({contact or 'no contact given'})"


def resolve_contact(contact: str | None) -> str | None:
    """The contact given on the command line, else $LOGOGAN_CONTACT, else None."""
    return contact or os.environ.get(CONTACT_ENV) or None


def is_wikimedia(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host == domain or host.endswith("." + domain) for domain in WIKIMEDIA_DOMAINS)


def require_contact_for(urls, contact: str | None) -> None:
    """UserError when any of ``urls`` is on a Wikimedia site and no contact was given."""
    if contact is not None:
        return
    for url in urls:
        if is_wikimedia(url):
            raise UserError(
                f"{urlsplit(url).hostname} requires a contact in the User-Agent; "
                f"pass --contact EMAIL_OR_URL (or set ${CONTACT_ENV})"
            )
