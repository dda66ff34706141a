"""What the demo data set holds, read by its two builds: Python (audiences.demo) and
PostgreSQL (audiences.demo_sql). Customer number n's values are picked from these lists by
dice of n.

Journeys follow the default stage rules: the first app_open moves awareness -> engagement, a
purchase -> conversion, a referral_sent -> advocacy, 30 quiet days -> retention. Each stage has
a script of events; its transitions point at the events that caused them. No script leaves a
gap of CHURN_DAYS between events after the first app open, so the only inactivity move is the
one that made retention customers."""

import time
from dataclasses import dataclass, field
from datetime import timedelta

from audiences.models import StageRule

DEMO_PREFIX = "demo-"
# Odd, so n -> n*M mod 2**50 is one-to-one: no two customers share a code. About 2**50 times
# the golden ratio, so neighbouring numbers get unlike codes.
REFERRAL_MULTIPLIER = 695_839_865_656_529

FIRST_NAMES = [
    "Ana", "Joao", "Maria", "Pedro", "Ines", "Tiago", "Sofia", "Miguel", "Lucia", "Carlos",
    "Emma", "Liam", "Olivia", "Noah", "Amelia", "Oliver", "Mia", "Lucas", "Chloe", "Hugo",
    "Yuki", "Haruto", "Priya", "Arjun", "Fatima", "Omar", "Lea", "Felix", "Zoe", "Mateo",
    "Camila", "Diego", "Aisha", "Kwame", "Nora", "Elias", "Ingrid", "Lars", "Marta", "Paolo",
]
LAST_NAMES = [
    "Silva", "Santos", "Ferreira", "Costa", "Oliveira", "Garcia", "Martinez", "Lopez", "Smith",
    "Johnson", "Brown", "Taylor", "Wilson", "Muller", "Schmidt", "Dubois", "Martin", "Bernard",
    "Rossi", "Bianchi", "Tanaka", "Sato", "Patel", "Sharma", "Khan", "Haddad", "Nielsen",
    "Jansen", "de Vries", "Kowalski", "Novak", "Mensah", "Okafor", "Kim", "Nguyen", "Chen",
]
# city, country, locale, IANA time zone. Lisbon twice: the benchmark's segment picks Lisbon.
PLACES = [
    ("Lisbon", "PT", "pt-PT", "Europe/Lisbon"), ("Lisbon", "PT", "pt-PT", "Europe/Lisbon"),
    ("Porto", "PT", "pt-PT", "Europe/Lisbon"), ("Madrid", "ES", "es-ES", "Europe/Madrid"),
    ("Barcelona", "ES", "es-ES", "Europe/Madrid"), ("London", "GB", "en-GB", "Europe/London"),
    ("Paris", "FR", "fr-FR", "Europe/Paris"), ("Berlin", "DE", "de-DE", "Europe/Berlin"),
    ("Amsterdam", "NL", "nl-NL", "Europe/Amsterdam"), ("Rome", "IT", "it-IT", "Europe/Rome"),
    ("New York", "US", "en-US", "America/New_York"),
    ("San Francisco", "US", "en-US", "America/Los_Angeles"),
    ("Toronto", "CA", "en-CA", "America/Toronto"),
    ("Sao Paulo", "BR", "pt-BR", "America/Sao_Paulo"),
    ("Mexico City", "MX", "es-MX", "America/Mexico_City"), ("Tokyo", "JP", "ja-JP", "Asia/Tokyo"),
    ("Mumbai", "IN", "en-IN", "Asia/Kolkata"), ("Sydney", "AU", "en-AU", "Australia/Sydney"),
    ("Cape Town", "ZA", "en-ZA", "Africa/Johannesburg"), ("Dubai", "AE", "ar-AE", "Asia/Dubai"),
]
CUISINES = ["portuguese", "italian", "japanese", "indian", "mexican", "thai", "vegan",
            "burgers", "chinese", "middle eastern", "korean", "french"]
PLANS = ["free", "free", "free", "plus", "plus", "pro"]
SIGNUP_CHANNELS = ["app_store", "google_play", "web", "referral", "instagram", "tiktok"]
RESTAURANTS = ["Tasca do Chico", "Sushi Aoi", "Curry Leaf", "La Taqueria", "Pasta Fresca",
               "Green Bowl", "Burger Lab", "Dragon Wok", "Le Petit Bistro", "Seoul Kitchen",
               "Falafel House", "Bangkok Street"]
DESTINATIONS = ["Lisbon", "Porto", "Madeira", "Azores", "Seville", "Kyoto", "Marrakesh",
                "Cape Town", "Rome", "Mexico City", "Bali", "Reykjavik"]
CAMPAIGNS = ["Welcome series", "Weekend offer", "Guide of the week", "We miss you",
             "New restaurants near you"]
REFERRAL_CHANNELS = ["whatsapp", "email", "sms", "link"]
CURRENCY = "EUR"
# Share of customers per stage, in percent, in journey order.
STAGE_MIX = [("awareness", 30), ("engagement", 28), ("conversion", 20), ("retention", 12),
             ("advocacy", 10)]
RECENT_DAYS = 30  # active customers' last event lies 0..29 days back
DORMANT_DAYS = (31, 120)  # retention customers went quiet 31..150 days back
OPT_OUT_PERCENT = {"offers": 12, "content": 6}
PUSH_OPT_OUT_PERCENT = 4

# Default stage rules (see audiences migration 0002), by name: a transition names its rule.
FIRST_OPEN, PURCHASE, REFERRAL, CHURN = "First app open", "Purchase", "Referral sent", "Churn risk"
CHURN_DAYS = 30


@dataclass(frozen=True)
class Step:
    """One scripted event: ``days`` before the customer's last activity (plus ``minutes``),
    kept for ``share`` percent of customers; steps of one ``group`` (an order and its
    purchase) share their dice. ``moves`` is the (from, to, rule) transition it causes."""

    key: str
    name: str
    days: int
    minutes: int = 0
    share: int = 100
    props: str = "none"
    group: str = ""
    moves: tuple[str, str, str] | None = None

    @property
    def dice_group(self) -> str:
        return self.group or self.key


def _order(key: str, days: int, share: int = 100, moves=None) -> list[Step]:
    return [
        Step(f"order_{key}", "order_placed", days, -20, share, "order", key),
        Step(f"purchase_{key}", "purchase", days, -18, share, "purchase", key, moves),
    ]


TO_ENGAGEMENT = ("awareness", "engagement", FIRST_OPEN)
TO_CONVERSION = ("engagement", "conversion", PURCHASE)
SCRIPTS: dict[str, list[Step]] = {
    "awareness": [
        Step("guide_1", "destination_guide_viewed", 6, props="guide"),
        Step("guide_2", "destination_guide_viewed", 0, props="guide"),
    ],
    "engagement": [
        Step("guide_1", "destination_guide_viewed", 20, props="guide"),
        Step("open_1", "app_open", 14, moves=TO_ENGAGEMENT),
        Step("guide_2", "destination_guide_viewed", 9, share=70, props="guide"),
        Step("opened_1", "notification_opened", 5, share=50, props="campaign"),
        Step("open_2", "app_open", 0),
    ],
    "conversion": [
        Step("open_1", "app_open", 40, moves=TO_ENGAGEMENT),
        Step("guide_1", "destination_guide_viewed", 35, share=80, props="guide"),
        *_order("1", 21, moves=TO_CONVERSION),
        Step("opened_1", "notification_opened", 7, share=60, props="campaign"),
        *_order("2", 0, share=60),
        Step("open_2", "app_open", 0),
    ],
    "retention": [
        Step("open_1", "app_open", 60, moves=TO_ENGAGEMENT),
        Step("guide_1", "destination_guide_viewed", 52, share=80, props="guide"),
        *_order("1", 40, moves=TO_CONVERSION),
        Step("opened_1", "notification_opened", 28, share=50, props="campaign"),
        *_order("2", 20),
        Step("open_2", "app_open", 0),
    ],
    "advocacy": [
        Step("open_1", "app_open", 95, moves=TO_ENGAGEMENT),
        *_order("1", 80, moves=TO_CONVERSION),
        Step("rating_1", "rating", 60, props="rating"),
        *_order("2", 25),
        Step("referral_1", "referral_sent", 3, props="referral",
             moves=("conversion", "advocacy", REFERRAL)),
        Step("opened_1", "notification_opened", 2, share=60, props="campaign"),
        Step("open_2", "app_open", 0),
    ],
}
# Retention customers were moved by the inactivity rule CHURN_DAYS after their last event.
INACTIVITY_MOVES = {"retention": ("conversion", "retention", CHURN)}


def external_id(n: int) -> str:
    return f"{DEMO_PREFIX}{n:06d}"


def first_step_days(stage: str) -> int:
    return max(step.days for step in SCRIPTS[stage])


def stage_changed_offset(stage: str) -> timedelta | None:
    """When the customer entered their stage, relative to their last activity."""
    if stage in INACTIVITY_MOVES:
        return timedelta(days=CHURN_DAYS)
    moves = [step for step in SCRIPTS[stage] if step.moves]
    if not moves:
        return None
    last = min(moves, key=lambda step: (step.days, -step.minutes))
    return timedelta(days=-last.days, minutes=last.minutes)


@dataclass
class Timings:
    """Seconds and rows per part of the seeding, summed over chunks."""

    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, part: str, started: float, rows: int) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - started
        self.rows[part] = self.rows.get(part, 0) + rows


def rule_ids() -> dict[str, int]:
    return dict(StageRule.objects.values_list("name", "pk"))


def transition_cause(rule: str, event_name: str | None) -> str:
    """The same wording as audiences.stages uses."""
    if event_name is None:
        return f"{rule}: no event for {CHURN_DAYS} days"
    return f"{rule}: {event_name} event"
