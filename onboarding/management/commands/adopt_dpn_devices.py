"""python manage.py adopt_dpn_devices [--by id|username|email] [--mapping FILE]
[--no-create-customers] [--fcm-platform android|ios|web] [--dry-run]: give the rows a
django-push-notifications project left in GCMDevice / APNSDevice / WebPushDevice a Device and a
customer, without copying their tokens; then the counts per kind."""

import argparse
import os

from django.core.management.base import BaseCommand, CommandError

from notifications.models import Device
from onboarding.adoption import BY, FCM_PLATFORMS, AdoptReport, MappingFileProblem
from onboarding.services import dpn_devices_adopt


class Command(BaseCommand):
    help = ("Link django-push-notifications devices that have no Device yet to customers, by "
            "their user or a mapping file; the tokens stay where they are. README: 'Coming "
            "from elsewhere'.")

    def add_arguments(self, parser):
        parser.add_argument("--by", choices=BY, default="id",
                            help="Which field of the row's user is the customer's external id "
                                 "(default: id).")
        parser.add_argument("--mapping", dest="mapping_path",
                            help="A CSV file, registration_id,external_id or "
                                 "device_id,external_id, for rows without users (it wins over "
                                 "a row's user).")
        # On by default: a dpn row belongs to one of the brand's users, so its customer is
        # real even when no import has created it yet, and a later import_customers fills the
        # profile of the same external id. --dry-run shows how many would be created.
        parser.add_argument("--create-customers", action=argparse.BooleanOptionalAction,
                            default=True,
                            help="Create the customers that do not exist (default); with "
                                 "--no-create-customers their rows are skipped.")
        parser.add_argument("--fcm-platform", choices=FCM_PLATFORMS, default="android",
                            help="The platform of FCM rows, which dpn does not record "
                                 "(default: android).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Report what would be linked and skipped; write nothing.")

    def handle(self, *args, by, mapping_path, create_customers, fcm_platform, dry_run,
               **options):
        if mapping_path and not os.path.isfile(mapping_path):
            raise CommandError(f"No file at {mapping_path}.")
        try:
            report = dpn_devices_adopt(
                by=by, mapping_path=mapping_path, create_customers=create_customers,
                fcm_platform=fcm_platform, dry_run=dry_run,
                on_error=lambda reason: self.stdout.write(reason))
        except MappingFileProblem as problem:
            raise CommandError(str(problem)) from problem
        self.stdout.write(summary_text(report, by=by, create_customers=create_customers))


COLUMNS = ("linked", "inactive", "no user", "no customer", "already linked")


def summary_text(report: AdoptReport, *, by: str, create_customers: bool) -> str:
    verb = "were" if report.written else "would be"
    lines = [f"{'':10}" + "".join(f"{name:>16}" for name in COLUMNS)]
    for kind, label in Device.Kind.choices:
        counts = (report.linked, report.inactive, report.no_user, report.no_customer,
                  report.already)
        lines.append(f"{label:10}" + "".join(f"{c.get(kind, 0):>16,}" for c in counts))
    lines.append(f"Devices {verb} linked: {sum(report.linked.values()):,}, of which "
                 f"{sum(report.inactive.values()):,} inactive; customers {verb} created: "
                 f"{report.customers_created:,}.")
    if sum(report.no_user.values()):
        lines.append("Rows without a user need a --mapping file.")
    if sum(report.no_customer.values()):
        lines.append(
            f"Rows whose user has no {by}, or one that cannot be an external id, were skipped."
            if create_customers else
            "Rows whose customer does not exist were skipped: import the customers first, or "
            "run without --no-create-customers.")
    if report.mapping_lines:
        lines.append(f"Mapping file: {report.mapping_lines:,} lines, "
                     f"{report.mapping_unknown:,} naming no device, "
                     f"{report.mapping_refused:,} refused.")
    if not report.written:
        lines.append("Dry run: nothing was written.")
    return "\n".join(lines)
