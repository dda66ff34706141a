"""A referral history counted by hand (see ``referral_world``)."""

from datetime import UTC, date, datetime

from audiences.models import Customer, Event, StageTransition
from audiences.services import customer_upsert

W1, W2 = date(2026, 3, 2), date(2026, 3, 9)  # two Mondays


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _person(external_id: str, created: datetime, referrer=None) -> Customer:
    person, _ = customer_upsert(external_id=external_id)
    Customer.objects.filter(pk=person.pk).update(created_at=created, referred_by=referrer)
    return person


def _signup(referrer, friend: str, when: datetime) -> None:
    Event.objects.create(customer=referrer, name="referral_signup", occurred_at=when,
                         properties={"referred_customer": friend},
                         client_event_id=f"referral:{friend}")


def _converted(referrer, friend: str, when: datetime, revenue: float) -> None:
    Event.objects.create(customer=referrer, name="referral_converted", occurred_at=when,
                         properties={"referred_customer": friend, "revenue": revenue},
                         client_event_id=f"referral-converted:{friend}")


def referral_world() -> dict:
    """Referrers A and B (created long before). Week 1 (W1..W1+6): A brings f1 and f2, B brings
    f3; five opens of A's link; f1 converts (40.00, in week 1) and f3 converts (20.00, in week
    2). Week 2: A brings f4, who does not convert. Two organic customers join in week 1.
    So week 1: 2 referrers, 3 sign-ups, 2 converted: 1.5 per referrer x 2/3 = K 1.0; week 2:
    1 referrer, 1 sign-up, 0 converted: K 0. New customers in W1..W2+6: 6, referred 4.
    Moves into advocacy: A twice by "Referral sign-up", B once by hand."""
    a = _person("ref-a", at(date(2026, 1, 5)))
    b = _person("ref-b", at(date(2026, 1, 5)))
    for n, (friend, referrer, day) in enumerate([("f1", a, W1), ("f2", a, W1), ("f3", b, W1),
                                                 ("f4", a, W2)]):
        _person(friend, at(day, 10 + n), referrer)
        _signup(referrer, friend, at(day, 10 + n))
    for n in range(2):
        _person(f"organic-{n}", at(W1, 15))
    for n in range(5):
        Event.objects.create(customer=a, name="referral_link_opened", occurred_at=at(W1, 9),
                             properties={"opened_by": f"x{n}"}, client_event_id=f"rl:{n}")
    _converted(a, "f1", at(W1, 20), 40.0)
    _converted(b, "f3", at(W2, 9), 20.0)
    for who, cause, day in ((a, "Referral sign-up: referral_signup event", W1),
                            (a, "Referral sign-up: referral_signup event", W2),
                            (b, "Set by hand in the admin", W1)):
        StageTransition.objects.create(customer=who, from_stage="awareness",
                                       to_stage="advocacy", at=at(day, 11), cause=cause)
    return {"a": a, "b": b}
