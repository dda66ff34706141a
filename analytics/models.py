"""Daily rollups: what reports read instead of raw deliveries, enrollments, conversions and
stage transitions. Every row is a sum over one UTC day; analytics.rollups rebuilds whole days
(delete, then INSERT ... SELECT), so a row is never updated in place and a rebuild of any day
gives the same numbers as the raw tables.

Campaign, step and variant are plain ids, not foreign keys: a rollup must not block deleting a
campaign, and reports look the names up when they show them."""

from django.db import models


class DeliveryDay(models.Model):
    """Deliveries created on one day, by campaign step and variant, provider, status and
    reason. A delivery belongs to the day its row was created (the day the send targeted the
    customer); its later sending, receipt and open count on that same day. Not per send: a
    journey makes a send per tick batch, so that grain would grow with the traffic."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    campaign_id = models.BigIntegerField(null=True)  # null: not a campaign's send
    step_id = models.BigIntegerField(null=True)
    variant_id = models.BigIntegerField(null=True)
    kind = models.CharField(max_length=10, blank=True)  # blank: skipped with no device
    status = models.CharField(max_length=10)
    reason = models.CharField(max_length=30, blank=True)
    deliveries = models.IntegerField()
    delivered = models.IntegerField()  # received_at set
    opened = models.IntegerField()  # opened_at set

    class Meta:
        indexes = [
            models.Index(fields=["campaign_id", "day"]),
            models.Index(fields=["day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.campaign_id} {self.kind or '-'} {self.status} {self.reason}"


class AudienceDay(models.Model):
    """Customers targeted on one day by a campaign step and variant: counted per send (a
    customer with two devices counts once per send), then summed."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    campaign_id = models.BigIntegerField(null=True)
    step_id = models.BigIntegerField(null=True)
    variant_id = models.BigIntegerField(null=True)
    targeted = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["campaign_id", "day"]),
            models.Index(fields=["day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.campaign_id}/{self.step_id}: {self.targeted} targeted"


class ConversionDay(models.Model):
    """Conversions on the day they occurred, by group and by the step, variant and provider of
    the delivery they are attributed to (none for the holdout and control groups)."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    campaign_id = models.BigIntegerField()
    group = models.CharField(max_length=10)
    step_id = models.BigIntegerField(null=True)
    variant_id = models.BigIntegerField(null=True)
    kind = models.CharField(max_length=10, blank=True)
    conversions = models.IntegerField()
    revenue = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [
            models.Index(fields=["campaign_id", "day"]),
            models.Index(fields=["day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id} {self.group}: {self.conversions}"


class EnrollmentDay(models.Model):
    """Enrollments that entered, and that exited, a campaign on one day, by group."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    campaign_id = models.BigIntegerField()
    group = models.CharField(max_length=10)
    entered = models.IntegerField()
    exited = models.IntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["campaign_id", "day"]),
            models.Index(fields=["day"]),
        ]

    def __str__(self) -> str:
        return f"{self.day} campaign {self.campaign_id} {self.group}"


class TransitionDay(models.Model):
    """Lifecycle stage transitions per day: entries into ``to_stage`` and exits from
    ``from_stage`` are both sums over this table."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    from_stage = models.CharField(max_length=20)
    to_stage = models.CharField(max_length=20)
    transitions = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.from_stage} -> {self.to_stage}: {self.transitions}"


class RollupState(models.Model):
    """Where the incremental refresh got to (one row, pk=1).

    ``watermark`` is when the last refresh started: rows whose timestamps moved since then
    touched their day. The ``last_*_id`` columns catch rows inserted with a timestamp in the
    past (a conversion or a transition dated by its event). ``lease_until`` claims the refresh
    for one worker at a time."""

    watermark = models.DateTimeField(null=True, blank=True)
    last_delivery_id = models.BigIntegerField(default=0)
    last_enrollment_id = models.BigIntegerField(default=0)
    last_conversion_id = models.BigIntegerField(default=0)
    last_transition_id = models.BigIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    days_refreshed = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"Rollups refreshed at {self.refreshed_at or 'never'}"


class AnalyticsAccess(models.Model):
    """No table: the holder of analytics' own permissions, which analytics.roles gives to
    the Analyst (and partly the Marketer) group."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("export_data", "Can export raw data and reports"),
            ("view_dashboard", "Can see the analytics dashboard"),
        ]

    def __str__(self) -> str:
        return "Analytics access"
