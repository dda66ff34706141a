"""The device steps of the customers merge (onboarding.merge): staged devices into
django-push-notifications' token rows and our device rows, set-based, by token.

A token already known keeps its rows and moves to the customer of the staged row; a device row
is written only when something about it differs; an import never re-activates a device that a
provider reported dead (``is_active`` is left as it is)."""

from notifications.models import Device

PROVIDERS = {  # device kind -> (provider table, extra columns of its row)
    Device.Kind.FCM: ("push_notifications_gcmdevice", {"cloud_message_type": "'FCM'"}),
    Device.Kind.APNS: ("push_notifications_apnsdevice", {}),
    Device.Kind.WEBPUSH: ("push_notifications_webpushdevice", {
        "p256dh": "COALESCE(d.p256dh, '')", "auth": "COALESCE(d.auth, '')",
        "browser": "COALESCE(d.browser, 'CHROME')"}),
}
DEVICE_TEXT = ("platform", "app_version", "locale", "time_zone", "environment", "permission")


class DeviceSteps:
    """Mixed into the merge, whose ``sql``, ``insert_and_fill``, ``differs``, ``pg`` and
    ``now`` the steps use."""

    def _stage_devices(self) -> None:
        if self.pg:
            source = "jsonb_array_elements(s.devices) AS j"
            columns = ", ".join(f"j.value->>'{name}'" for name in _DEVICE_VALUES)
        else:
            source = "json_each(s.devices) AS j"
            columns = ", ".join(f"json_extract(j.value, '$.{name}')" for name in _DEVICE_VALUES)
        self.sql(f"""
            INSERT INTO {{D}} (line, external_id, {', '.join(_DEVICE_VALUES)}, changed,
                moved)
            SELECT s.line, s.external_id, {columns}, FALSE, FALSE
            FROM {{S}} AS s, {source}
            WHERE s.error IS NULL AND s.devices IS NOT NULL""")
        self.sql("CREATE INDEX jh_stage_device_token ON {D} (kind, token)")
        self.sql("CREATE INDEX jh_stage_device_eid ON {D} (external_id)")
        self.sql("CREATE INDEX jh_stage_device_line ON {D} (line)")
        if self.pg:
            self.sql("ANALYZE {D}")

    def _refuse_repeated_tokens(self) -> int:
        return self.sql(f"""
            UPDATE {{S}} AS s SET error = 'device_token: The same token is on {self.unit} '
                || dup.first || '.'
            FROM (
                SELECT d.line, f.first FROM {{D}} AS d JOIN (
                    SELECT kind, token, MIN(line) AS first FROM {{D}}
                    GROUP BY kind, token HAVING COUNT(*) > 1
                ) AS f ON f.kind = d.kind AND f.token = d.token
                WHERE d.line > f.first
            ) AS dup
            WHERE s.line = dup.line AND s.error IS NULL""")

    def _find_devices(self) -> None:
        """Which staged tokens exist, which have our device row, and whether that row would
        change (``changed``; a device not there yet is written anyway) or move to another
        customer (``moved``)."""
        for kind, (table, _) in PROVIDERS.items():
            self.sql(f"""
                UPDATE {{D}} AS d SET provider_id = p.id FROM {table} AS p
                WHERE d.kind = %s AND p.registration_id = d.token""", [kind])
            self.sql(f"""
                UPDATE {{D}} AS d SET device_id = dv.id FROM {{DV}} AS dv
                WHERE d.kind = %s AND d.provider_id IS NOT NULL
                  AND dv.{kind}_id = d.provider_id""", [kind])
        moved = f"{self.differs('dv.customer_id', 's.customer_id')}"
        field_checks = " OR ".join(
            f"(d.{name} IS NOT NULL AND dv.{name} <> d.{name})" for name in DEVICE_TEXT)
        self.sql(f"""
            UPDATE {{D}} AS d SET moved = {moved}, changed = {moved} OR {field_checks}
            FROM {{DV}} AS dv, {{S}} AS s
            WHERE d.device_id IS NOT NULL AND dv.id = d.device_id AND s.line = d.line""")
        for kind, (table, _) in PROVIDERS.items():
            checks = [f"(d.application_id IS NOT NULL AND "
                      f"{self.differs('p.application_id', 'd.application_id')})"]
            if kind == Device.Kind.WEBPUSH:
                checks += [f"(d.{name} IS NOT NULL AND p.{name} <> d.{name})"
                           for name in ("p256dh", "auth", "browser")]
            self.sql(f"""
                UPDATE {{D}} AS d SET changed = TRUE FROM {table} AS p
                WHERE d.kind = %s AND d.device_id IS NOT NULL AND p.id = d.provider_id
                  AND NOT d.changed AND ({' OR '.join(checks)})""", [kind])

    def _write_devices(self) -> None:
        for kind, (table, extra) in PROVIDERS.items():
            columns = ", ".join(["registration_id", "active", "date_created", "application_id",
                                 *extra])
            values = ", ".join(["d.token", "TRUE", "%s", "d.application_id", *extra.values()])
            self.insert_and_fill(
                f"""INSERT INTO {table} ({columns}) SELECT {values} FROM {{D}} AS d
                    WHERE d.kind = %s AND d.provider_id IS NULL
                    ORDER BY d.token ON CONFLICT DO NOTHING""",
                [self.now, kind], returning="id, registration_id",
                fill=f"""UPDATE {{D}} AS d SET provider_id = new.id FROM new
                         WHERE d.kind = '{kind}' AND d.token = new.registration_id""",
                refill=f"""UPDATE {{D}} AS d SET provider_id = p.id FROM {table} AS p
                           WHERE d.kind = '{kind}' AND d.provider_id IS NULL
                             AND p.registration_id = d.token""")
            sets = ["application_id = COALESCE(d.application_id, p.application_id)"]
            if kind == Device.Kind.WEBPUSH:
                sets += [f"{name} = COALESCE(d.{name}, p.{name})"
                         for name in ("p256dh", "auth", "browser")]
            self.sql(f"""
                UPDATE {table} AS p SET {', '.join(sets)} FROM {{D}} AS d
                WHERE d.kind = %s AND p.id = d.provider_id AND d.changed""", [kind])
        sets = ", ".join(f"{name} = COALESCE(d.{name}, dv.{name})" for name in DEVICE_TEXT)
        self.sql(f"""
            UPDATE {{DV}} AS dv SET customer_id = s.customer_id, {sets}, last_seen_at = %s
            FROM {{D}} AS d JOIN {{S}} AS s ON s.line = d.line
            WHERE dv.id = d.device_id AND d.changed""", [self.now])
        self.sql("""
            INSERT INTO {DV} (customer_id, kind, platform, apns_id, fcm_id, webpush_id,
                app_version, locale, time_zone, environment, permission, is_active,
                deactivated_reason, created_at, last_seen_at)
            SELECT s.customer_id, d.kind, d.platform,
                CASE WHEN d.kind = 'apns' THEN d.provider_id END,
                CASE WHEN d.kind = 'fcm' THEN d.provider_id END,
                CASE WHEN d.kind = 'webpush' THEN d.provider_id END,
                COALESCE(d.app_version, ''), COALESCE(d.locale, ''), COALESCE(d.time_zone, ''),
                COALESCE(d.environment, 'production'), COALESCE(d.permission, 'granted'),
                TRUE, '', %s, %s
            FROM {D} AS d JOIN {S} AS s ON s.line = d.line
            WHERE d.device_id IS NULL
            ORDER BY s.customer_id
            ON CONFLICT DO NOTHING""", [self.now, self.now])


_DEVICE_VALUES = ("kind", "token", "platform", "app_version", "locale", "time_zone",
                  "environment", "permission", "application_id", "p256dh", "auth", "browser")
