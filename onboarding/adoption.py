"""Adopting a django-push-notifications project's devices: its GCMDevice, APNSDevice and
WebPushDevice rows that have no Device yet get one, owned by a customer found through the row's
user or a mapping file. The provider rows stay as they are and the Device points at them, so no
token is copied and sending works from the first run.

Set-based like the import: one temporary table of candidate rows with their external ids
(``jh_adopt``), filled with ``INSERT ... SELECT`` per provider table (a mapping file's ids by
``UPDATE ... FROM``), and turned into Devices by one ``INSERT ... SELECT`` joined to
customers. Customers that do not exist are created through the import's own staging and merge
(onboarding.merge), so they get their buckets and referral codes exactly as imported ones do.
Runs inside the caller's transaction."""

import csv
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.db import connection
from push_notifications.models import APNSDevice, GCMDevice

from audiences.models import Customer
from notifications.deactivation import PROVIDER_MODELS
from notifications.models import Device
from onboarding.items import customer_item_parse
from onboarding.merge import stage_merge
from onboarding.sql_steps import SqlSteps
from onboarding.staging import customer_row, stage_create, stage_writer

ADOPT = "jh_adopt"
MAPPED = "jh_adopt_map"
INACTIVE_REASON = "Inactive in django-push-notifications"
BY = ("id", "username", "email")  # which of the user's fields is the customer's external id
FCM_PLATFORMS = (Device.Platform.ANDROID, Device.Platform.IOS, Device.Platform.WEB)
KIND_PLATFORM = {Device.Kind.APNS: Device.Platform.IOS, Device.Kind.WEBPUSH: Device.Platform.WEB}
STAGE_BATCH = 10_000  # new customers' external ids read and staged at a time
MAP_BATCH = 5_000  # mapping file lines inserted per round trip
HEX_ID = re.compile(r"^(0x)?[0-9a-fA-F]{1,16}$")  # an Android id as dpn stores it: 64 bits


class MappingFileProblem(Exception):
    """The mapping file as a whole cannot be read: nothing is adopted."""


@dataclass
class AdoptReport:
    linked: dict[str, int] = field(default_factory=dict)  # kind -> Devices made
    inactive: dict[str, int] = field(default_factory=dict)  # kind -> of those, inactive
    no_user: dict[str, int] = field(default_factory=dict)  # kind -> no user, no mapping line
    no_customer: dict[str, int] = field(default_factory=dict)  # kind -> no customer to own it
    already: dict[str, int] = field(default_factory=dict)  # kind -> had a Device before
    customers_created: int = 0
    mapping_lines: int = 0
    mapping_unknown: int = 0  # mapping lines that name no dpn row
    mapping_refused: int = 0
    written: bool = False


def devices_adopt(*, by: str, mapping_path: str | None, create_customers: bool,
                  fcm_platform: str, now, on_error: Callable[[str], None]) -> AdoptReport:
    """Link every dpn row without a Device to a customer (see the module). Rows named in the
    mapping file go to its external id; the others to their user's ``by`` field."""
    adoption = _Adoption(by=by, fcm_platform=fcm_platform, now=now, on_error=on_error)
    return adoption.run(mapping_path=mapping_path, create_customers=create_customers)


class _Adoption(SqlSteps):
    names = {"A": ADOPT, "M": MAPPED, "C": Customer._meta.db_table,
             "DV": Device._meta.db_table}

    def __init__(self, *, by, fcm_platform, now, on_error):
        super().__init__(now=now)
        if by not in BY:
            raise ValueError(f"by is one of {', '.join(BY)}")
        if fcm_platform not in FCM_PLATFORMS:
            raise ValueError(f"fcm_platform is one of {', '.join(FCM_PLATFORMS)}")
        self.by, self.fcm_platform, self.on_error = by, fcm_platform, on_error
        self.report = AdoptReport()

    def run(self, *, mapping_path, create_customers) -> AdoptReport:
        self._create_tables()
        self._candidates()
        if mapping_path:
            self._apply_mapping(self._load_mapping(mapping_path))
        if self.pg:  # a temporary table is never analysed on its own
            self.sql("ANALYZE {A}")
        if create_customers:
            self._create_customers()
        self._count()
        self._write_devices()
        return self.report

    def _create_tables(self) -> None:
        temporary = "CREATE TEMPORARY TABLE"
        on_commit = " ON COMMIT DROP" if self.pg else ""
        uuid_type = "uuid" if self.pg else "char(32)"
        for table in (ADOPT, MAPPED):
            self.sql(f"DROP TABLE IF EXISTS {table}")
        self.sql(f"""{temporary} {{A}} (kind varchar(10), provider_id bigint, user_id bigint,
            active boolean, date_created timestamp with time zone,
            external_id text){on_commit}""")
        self.sql(f"""{temporary} {{M}} (line bigint, registration_id text,
            gcm_device_id bigint, apns_device_id {uuid_type}, external_id text){on_commit}""")

    # --- who the rows are ----------------------------------------------------------------

    def _candidates(self) -> None:
        """Every dpn row without a Device, with its user's external id; and how many have
        one already."""
        user_field = GCMDevice._meta.get_field("user")  # the same on all three models
        user_model, user_column = user_field.related_model, user_field.column
        key = self._user_key(user_model)
        for kind, model in PROVIDER_MODELS.items():
            table = model._meta.db_table
            linked = f"EXISTS (SELECT 1 FROM {{DV}} AS dv WHERE dv.{kind}_id = p.id)"
            self.sql(f"""
                INSERT INTO {{A}} (kind, provider_id, user_id, active, date_created,
                    external_id)
                SELECT %s, p.id, p.{user_column}, p.active, p.date_created, {key}
                FROM {table} AS p LEFT JOIN {user_model._meta.db_table} AS u
                    ON u.{user_model._meta.pk.column} = p.{user_column}
                WHERE NOT {linked}""", [kind])
            self.report.already[kind] = self.rows(
                f"SELECT COUNT(*) FROM {table} AS p WHERE {linked}")[0][0]
        self.sql("CREATE INDEX jh_adopt_provider ON {A} (kind, provider_id)")

    def _user_key(self, user_model) -> str:
        if self.by == "id":
            return f"CAST(u.{user_model._meta.pk.column} AS TEXT)"
        name = (user_model.USERNAME_FIELD if self.by == "username"
                else user_model.get_email_field_name())
        return f"NULLIF(u.{user_model._meta.get_field(name).column}, '')"

    def _load_mapping(self, path: str) -> str:
        """Fill the mapping table; returns the file's key (registration_id or device_id)."""
        key, rows = _mapping_rows(path, self.on_error, self.report)
        columns = "line, registration_id, gcm_device_id, apns_device_id, external_id"
        with connection.cursor() as cursor:
            while batch := [row for _, row in zip(range(MAP_BATCH), rows, strict=False)]:
                cursor.executemany(f"INSERT INTO {MAPPED} ({columns}) VALUES "
                                   "(%s, %s, %s, %s, %s)", batch)
        for column in MAPPING_COLUMNS[key]:
            self.sql(f"CREATE INDEX jh_adopt_map_{column} ON {{M}} ({column})")
        return key

    def _apply_mapping(self, key: str) -> None:
        """The mapping file names its rows' customers, whatever their user says."""
        matches = MAPPING_MATCHES[key]
        for kind, match in matches.items():
            table = PROVIDER_MODELS[kind]._meta.db_table
            self.sql(f"""
                UPDATE {{A}} AS a SET external_id = m.external_id
                FROM {table} AS p JOIN {{M}} AS m ON {match}
                WHERE a.kind = %s AND a.provider_id = p.id""", [kind])
        known = " OR ".join(
            f"EXISTS (SELECT 1 FROM {PROVIDER_MODELS[kind]._meta.db_table} AS p "
            f"WHERE {match})" for kind, match in matches.items())
        self.report.mapping_unknown = self.rows(
            f"SELECT COUNT(*) FROM {{M}} AS m WHERE NOT ({known})")[0][0]

    def _create_customers(self) -> None:
        """Customers for the external ids that have none, through the import's staging and
        merge; an id that cannot be one (too long, a reserved ending) is reported. The ids
        are read in one pass, a batch at a time (a server-side cursor on PostgreSQL)."""
        stage_create()
        line = 0
        with connection.chunked_cursor() as missing:
            missing.execute(f"""
                SELECT DISTINCT a.external_id FROM {ADOPT} AS a WHERE NOT EXISTS (
                    SELECT 1 FROM {self.names['C']} AS c WHERE c.external_id = a.external_id)
                AND a.external_id IS NOT NULL""")
            while ids := missing.fetchmany(STAGE_BATCH):
                staged = []
                for (external_id,) in ids:
                    item, errors = customer_item_parse({"external_id": external_id},
                                                       topics=frozenset())
                    if item is None:
                        self.on_error(f"external id {external_id[:80]!r}: "
                                      f"{' '.join(errors['external_id'])}")
                        continue
                    line += 1
                    staged.append(customer_row(line, item))
                with stage_writer() as write:
                    write(staged)
        summary = stage_merge(now=self.now)
        self.report.customers_created = summary.customers.get("created", 0)

    # --- what is written -----------------------------------------------------------------

    def _count(self) -> None:
        for kind, linked, inactive, no_user, no_customer in self.rows("""
                SELECT a.kind,
                    SUM(CASE WHEN c.id IS NOT NULL THEN 1 ELSE 0 END),
                    SUM(CASE WHEN c.id IS NOT NULL AND NOT a.active THEN 1 ELSE 0 END),
                    SUM(CASE WHEN a.external_id IS NULL AND a.user_id IS NULL THEN 1 ELSE 0 END),
                    SUM(CASE WHEN c.id IS NULL AND (a.external_id IS NOT NULL
                                  OR a.user_id IS NOT NULL) THEN 1 ELSE 0 END)
                FROM {A} AS a LEFT JOIN {C} AS c ON c.external_id = a.external_id
                GROUP BY a.kind"""):
            self.report.linked[kind], self.report.inactive[kind] = linked, inactive
            self.report.no_user[kind], self.report.no_customer[kind] = no_user, no_customer

    def _write_devices(self) -> None:
        """One Device per matched row, pointing at the row; an inactive row's Device is
        inactive. A row a registration linked meanwhile keeps that link (its unique key)."""
        self.sql("""
            INSERT INTO {DV} (customer_id, kind, platform, apns_id, fcm_id, webpush_id,
                app_version, locale, time_zone, environment, permission, is_active,
                deactivated_reason, created_at, last_seen_at)
            SELECT c.id, a.kind,
                CASE a.kind WHEN 'fcm' THEN %s WHEN 'apns' THEN %s ELSE %s END,
                CASE WHEN a.kind = 'apns' THEN a.provider_id END,
                CASE WHEN a.kind = 'fcm' THEN a.provider_id END,
                CASE WHEN a.kind = 'webpush' THEN a.provider_id END,
                '', '', '', %s, %s, a.active,
                CASE WHEN a.active THEN '' ELSE %s END,
                COALESCE(a.date_created, %s), %s
            FROM {A} AS a JOIN {C} AS c ON c.external_id = a.external_id
            ON CONFLICT DO NOTHING""", [
            self.fcm_platform, KIND_PLATFORM[Device.Kind.APNS],
            KIND_PLATFORM[Device.Kind.WEBPUSH], Device.Environment.PRODUCTION,
            Device.Permission.GRANTED, INACTIVE_REASON, self.now, self.now])


# --- the mapping file ----------------------------------------------------------------------

# How a mapping file's key finds a dpn row, per kind: one equality each, so that the
# database can hash the join (WebPushDevice has no device id).
MAPPING_MATCHES = {
    "registration_id": {kind: "m.registration_id = p.registration_id"
                        for kind in PROVIDER_MODELS},
    "device_id": {Device.Kind.FCM: "m.gcm_device_id = p.device_id",
                  Device.Kind.APNS: "m.apns_device_id = p.device_id"},
}
MAPPING_COLUMNS = {"registration_id": ["registration_id"],
                   "device_id": ["gcm_device_id", "apns_device_id"]}


def _mapping_rows(path: str, on_error, report: AdoptReport) -> tuple[str, Iterator[tuple]]:
    """The key of a ``registration_id,external_id`` or ``device_id,external_id`` CSV file,
    and its table rows: (line, registration_id, gcm_device_id, apns_device_id, external_id).
    A bad line is reported and skipped; a key named twice keeps its first line."""
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise MappingFileProblem(f"The mapping file cannot be read: {error}") from error
    reader = csv.reader(handle)
    try:
        header = [name.strip() for name in next(reader, [])]
    except (csv.Error, UnicodeDecodeError) as error:
        handle.close()
        raise MappingFileProblem(f"The mapping file is not a UTF-8 CSV file: {error}") \
            from error
    if len(header) != 2 or header[0] not in MAPPING_MATCHES or header[1] != "external_id":
        handle.close()
        raise MappingFileProblem("The mapping file's header is registration_id,external_id "
                                 "or device_id,external_id.")
    return header[0], _mapping_lines(handle, reader, header[0], on_error, report)


def _mapping_lines(handle, reader, key: str, on_error, report: AdoptReport) -> Iterator[tuple]:
    seen: dict[str, int] = {}
    with handle:
        try:
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                report.mapping_lines += 1
                row = _mapping_row(reader.line_num, key, cells, seen)
                if isinstance(row, str):
                    report.mapping_refused += 1
                    on_error(f"mapping line {reader.line_num}: {row}")
                else:
                    yield row
        except (csv.Error, UnicodeDecodeError) as error:
            raise MappingFileProblem(f"The mapping file is not a UTF-8 CSV file: {error}") \
                from error


def _mapping_row(line: int, key: str, cells: list[str], seen: dict) -> tuple | str:
    """The table row of one line, or why the line is refused."""
    if len(cells) != 2:
        return f"expected 2 cells, found {len(cells)}."
    value, external_id = (cell.strip() for cell in cells)
    item, errors = customer_item_parse({"external_id": external_id}, topics=frozenset())
    if item is None:
        return f"external_id: {' '.join(errors['external_id'])}"
    if value in seen:
        return f"{key}: already on line {seen[value]}."
    seen[value] = line
    if key == "registration_id":
        return (line, value, None, None, external_id) if value else \
            "registration_id: This field may not be blank."
    device_id = _device_id(value)
    if device_id is None:
        return ("device_id: neither an Android id (up to 16 hexadecimal digits) nor an iOS "
                "identifierForVendor (a UUID).")
    return (line, None, *device_id, external_id)


def _device_id(value: str) -> tuple | None:
    """(gcm_device_id, apns_device_id) as dpn stores them, or None when it is neither."""
    if HEX_ID.match(value):
        stored = GCMDevice._meta.get_field("device_id").get_prep_value(value)
        return stored, None
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return None
    field_ = APNSDevice._meta.get_field("device_id")
    return None, field_.get_db_prep_value(parsed, connection)
