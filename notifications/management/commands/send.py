import argparse
import sys
import time
from datetime import time as dt_time
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audiences.models import Customer, Segment
from notifications.models import DeliveryBatch, LocalTimePassed, Send, Template
from notifications.selectors import send_progress
from notifications.services import delivery_batch_send, send_create, send_fan_out

POLL_SECONDS = 1.0
BAR_WIDTH = 40


class Command(BaseCommand):
    help = ("Send a template to a segment or to customers, and follow its progress. Workers do "
            "the sending; with --inline this process does it (no worker needed).")

    def add_arguments(self, parser):
        parser.add_argument("template", help="Template name or id.")
        audience = parser.add_mutually_exclusive_group(required=True)
        audience.add_argument("--segment", help="Segment key, name or id.")
        audience.add_argument("--customers", help="Comma-separated external ids.")
        parser.add_argument("--kinds", help="Only these providers, e.g. webpush or apns,fcm.")
        parser.add_argument("--throttle", type=int, help="Messages per minute.")
        parser.add_argument("--ignore-quiet-hours", action="store_true")
        parser.add_argument("--quiet-hours", type=_window, metavar="HH:MM-HH:MM",
                            help="Its own quiet window instead of the global one.")
        parser.add_argument("--local-time", type=_clock, metavar="HH:MM",
                            help="Deliver at this time in each customer's time zone.")
        parser.add_argument("--skip-passed", action="store_true",
                            help="With --local-time: skip customers whose time has passed "
                                 "today (default: they get it at that time tomorrow).")
        parser.add_argument("--transactional", action="store_true",
                            help="Exempt from the frequency caps and the control group.")
        parser.add_argument("--expires-in-minutes", type=int,
                            help="Never send after this many minutes from now.")
        parser.add_argument("--source", default="command")
        parser.add_argument("--inline", action="store_true",
                            help="Fan out and send in this process instead of the workers.")
        parser.add_argument("--no-wait", action="store_true", help="Queue it and return.")

    def handle(self, *args, **options):
        template = _find(Template, options["template"])
        audience = self._audience(options)
        expires = options["expires_in_minutes"]
        try:
            send = send_create(
                template=template, throttle_per_minute=options["throttle"],
                kinds=[k.strip() for k in (options["kinds"] or "").split(",") if k.strip()],
                respect_quiet_hours=not options["ignore_quiet_hours"],
                quiet_hours=options["quiet_hours"], local_time=options["local_time"],
                local_time_passed=(LocalTimePassed.SKIP if options["skip_passed"]
                                   else LocalTimePassed.NEXT_DAY),
                cap_exempt=options["transactional"], source=options["source"],
                expires_at=timezone.now() + timedelta(minutes=expires) if expires else None,
                **audience,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        self.stdout.write(f"Send #{send.pk} queued: {template.name}")
        if options["inline"]:
            self._run_inline(send)
        elif not options["no_wait"]:
            self._follow(send)
        progress = send_progress(send)
        self.stdout.write(
            f"Send #{send.pk}: {progress.sent} sent, {progress.failed} failed, "
            f"{progress.skipped} skipped {progress.reasons or ''}".rstrip()
        )

    def _audience(self, options) -> dict:
        if options["segment"]:
            by_key = Segment.objects.filter(key=options["segment"]).first()
            return {"segment": by_key or _find(Segment, options["segment"])}
        external_ids = [x.strip() for x in options["customers"].split(",") if x.strip()]
        found = dict(Customer.objects.filter(external_id__in=external_ids)
                     .values_list("external_id", "pk"))
        missing = [x for x in external_ids if x not in found]
        if missing:
            raise CommandError(f"Unknown customers: {', '.join(missing[:20])}")
        return {"customer_ids": list(found.values())}

    def _run_inline(self, send: Send) -> None:
        send_fan_out(send_id=send.pk)
        for batch_id in DeliveryBatch.objects.filter(send=send).values_list("pk", flat=True):
            delivery_batch_send(batch_id=batch_id)
            self._draw(send)
        self._draw(send, final=True)

    def _follow(self, send: Send) -> None:
        while True:
            send.refresh_from_db()
            self._draw(send)
            if send.status in (Send.Status.DONE, Send.Status.CANCELLED, Send.Status.PAUSED):
                break
            time.sleep(POLL_SECONDS)
        self._draw(send, final=True)
        if send.status == Send.Status.PAUSED:
            raise CommandError(send.error or "The send was paused.")

    def _draw(self, send: Send, final: bool = False) -> None:
        progress = send_progress(send)
        filled = int(BAR_WIDTH * progress.percent / 100)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        sys.stderr.write(f"\r[{bar}] {progress.finished}/{progress.total} "
                         f"({progress.sent} sent) {send.get_status_display()}   ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _find(model, name_or_id: str):
    lookup = {"pk": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
    try:
        return model.objects.get(**lookup)
    except model.DoesNotExist:
        raise CommandError(f"No {model._meta.verbose_name} {name_or_id!r}.") from None


def _clock(text: str) -> dt_time:
    try:
        return dt_time.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day like 09:30") from None


def _window(text: str) -> tuple[dt_time, dt_time]:
    start, _, end = text.partition("-")
    return _clock(start), _clock(end)
