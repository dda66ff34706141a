"""``python manage.py seed_demo [--customers N]``: the demo data set, or the scale data set.

Customers (with events, stage transitions and opt-outs) come from audiences.demo, their
devices from notifications.demo, chunk by chunk, each chunk in one transaction; then the demo
templates and campaigns, and the analytics rollups of the demo's history, so the dashboard
shows it at once. It lives in analytics, the app above every one it seeds. Running it again
adds nothing; raising --customers adds only the customers not there yet."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from analytics.models import ConversionDay, DeliveryDay
from analytics.rollups import rollups_mark_refreshed, rollups_rebuild
from audiences import demo as audiences_demo
from audiences.demo_data import external_id
from campaigns.demo import campaigns_seed
from campaigns.demo_history import history_seed
from notifications import demo as notifications_demo
from notifications.demo_sink import demo_inboxes_attach, demo_vapid_ensure
from notifications.models import Device, Send, Template
from notifications.services import send_create

DEFAULT_CUSTOMERS = 2000
ROLLUP_HISTORY_DAYS = 366  # the demo scripts' events reach about 250 days back
WELCOME_SOURCE = "demo: welcome"
DEMO_ADMIN = ("admin", "journeyhub")  # for a laptop with DEBUG on, never for a real server
# Web devices of the first customers get a demo sink inbox: a key pair each (~1 ms), so not
# the whole scale set.
SINK_CUSTOMERS = DEFAULT_CUSTOMERS


class Command(BaseCommand):
    help = ("Create demo customers, events, stage transitions, opt-outs, devices, templates and "
            "campaigns. Idempotent.")

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS,
                            help=f"How many demo customers (default {DEFAULT_CUSTOMERS}; "
                                 "1000000 builds the scale data set).")
        parser.add_argument("--admin-password",
                            help="Create the demo superuser 'admin' with this password, even "
                                 "when DEBUG is off.")

    def handle(self, *args, customers: int, admin_password: str | None, **options):
        if customers < 1:
            raise CommandError("--customers must be at least 1.")
        timings = audiences_demo.seed(
            customers=customers, log=self.stdout.write,
            per_chunk=lambda lo, hi, t: notifications_demo.devices_seed_range(
                lo=lo, hi=hi, timings=t),
        )
        if timings.rows.get("devices"):
            audiences_demo.analyze(timings, [Device, APNSDevice, GCMDevice, WebPushDevice])
        for part, seconds in timings.seconds.items():
            self.stdout.write(f"{part:12} {timings.rows[part]:>10,} new rows  {seconds:8.1f}s")
        self.stdout.write(f"{'total':12} {'':>10}           {sum(timings.seconds.values()):8.1f}s")
        self.stdout.write(f"Templates: {notifications_demo.templates_seed()} new.")
        campaigns = campaigns_seed()
        self.stdout.write(f"Campaigns: {len(campaigns)} new, one per lifecycle stage.")
        history = history_seed()
        if history:
            self.stdout.write(f"Campaign history: {history[1]} past weekly runs since "
                              f"{history[0]:%Y-%m-%d}.")
        if timings.rows.get("customers") or history:
            self._rollups()
        self._demo_sink(customers)
        self._demo_admin(admin_password)

    def _rollups(self) -> None:
        """The demo's history goes back months; the periodic refresh only looks at what
        changed since it last ran, so the history is rolled up here once."""
        started = timezone.now()
        until = started.date()
        days = rollups_rebuild(since=until - timedelta(days=ROLLUP_HISTORY_DAYS), until=until)
        rollups_mark_refreshed(now=started)
        rows = DeliveryDay.objects.count() + ConversionDay.objects.count()
        self.stdout.write(f"Analytics rollups: {days} days of demo history rebuilt "
                          f"({rows} delivery and conversion rollup rows).")

    def _demo_sink(self, customers: int) -> None:
        """In demo mode the first demo web devices subscribe to this server's own Web Push sink,
        so sends to them go through the real Web Push code and can be read in the admin."""
        if not settings.DEMO_WEBPUSH_SINK:
            return
        demo_vapid_ensure()
        last = min(customers, SINK_CUSTOMERS)
        first = [external_id(n) for n in range(1, last + 1)]
        devices = Device.objects.filter(customer__external_id__in=first)
        attached = demo_inboxes_attach(devices=devices)
        self.stdout.write(f"Demo Web Push sink: {attached} new web device inbox(es).")
        self._welcome_send()

    def _welcome_send(self) -> None:
        """Once: a destination guide to the demo inboxes, so the first `make run` shows pushes
        arriving (Notifications > Received pushes) as soon as the worker is up."""
        if Send.objects.filter(source=WELCOME_SOURCE).exists():
            return
        customer_ids = list(Device.objects.filter(demo_inbox__isnull=False)
                            .values_list("customer_id", flat=True).distinct())
        if not customer_ids:
            return
        send_create(template=Template.objects.get(name="Destination guide"),
                    customer_ids=customer_ids, kinds=["webpush"], respect_quiet_hours=False,
                    source=WELCOME_SOURCE)
        self.stdout.write(f"Queued a demo send to {len(customer_ids)} web device inbox(es).")

    def _demo_admin(self, password: str | None) -> None:
        username, default_password = DEMO_ADMIN
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"Superuser {username!r} exists; left as it is.")
        elif password is None and not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo superuser created "
                              "(give --admin-password to create one).")
        else:
            users.create_superuser(username, "admin@example.com", password or default_password)
            shown = "the given password" if password else f"password {default_password!r}"
            self.stdout.write(f"Created superuser {username!r} with {shown}.")
