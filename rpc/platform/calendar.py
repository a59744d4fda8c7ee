"""Calendar invitations for emails (iCalendar, RFC 5545, with iTIP's methods, RFC 5546).

An outbox row whose context carries `calendar` facts gets them attached as `invite.ics`, so the event
lands in the recipient's calendar; a later message with the same `uid` and a higher `sequence` moves it
(METHOD:REQUEST) or takes it off (METHOD:CANCEL). The facts come from SQL (a capability's email
trigger): uid, sequence, method, starts_at, ends_at (ISO 8601), summary, and optionally location,
description and attendees ([{email, name}]).
"""

from __future__ import annotations

import datetime as dt
from email.utils import parseaddr
from typing import Any

from icalendar import Calendar, Event, vCalAddress, vText

METHODS = ("REQUEST", "CANCEL")


def invitation(facts: dict[str, Any], *, organizer: str, domain: str, product: str) -> bytes:
    """The VCALENDAR for `facts`; `organizer` is the sender's address ("Name <address>" or bare), as iTIP
    requires one, and `domain` makes the event's UID unique. Raises ValueError for facts that make no
    event."""
    method = facts.get("method")
    if method not in METHODS:
        raise ValueError(f"calendar method must be one of {METHODS}, not {method!r}")
    name, address = parseaddr(organizer)
    calendar = Calendar()
    calendar.add("prodid", f"-//{product}//Interviews//EN")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", f"{facts['uid']}@{domain}")
    event.add("sequence", int(facts["sequence"]))
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("dtstart", dt.datetime.fromisoformat(facts["starts_at"]).astimezone(dt.UTC))
    event.add("dtend", dt.datetime.fromisoformat(facts["ends_at"]).astimezone(dt.UTC))
    event.add("summary", facts["summary"])
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    for optional in ("location", "description"):
        if facts.get(optional):
            event.add(optional, facts[optional])
    sender = vCalAddress(f"mailto:{address}")
    sender.params["cn"] = vText(name or product)
    event.add("organizer", sender, encode=False)
    for attendee in facts.get("attendees") or []:
        if not attendee.get("email"):
            continue  # e.g. an interviewer without an address: nobody to invite
        guest = vCalAddress(f"mailto:{attendee['email']}")
        if attendee.get("name"):
            guest.params["cn"] = vText(attendee["name"])
        guest.params["role"] = vText("REQ-PARTICIPANT")
        event.add("attendee", guest, encode=False)
    calendar.add_component(event)
    return calendar.to_ical()
