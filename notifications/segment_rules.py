"""Segment rule "device": customers with an active device of a kind or platform."""

from typing import Any

from django.db.models import Exists, OuterRef, Q

from audiences.segments import RuleContext, register_rule
from notifications.models import Device

DEVICE_FILTERS = {
    "kind": Device.Kind.values,
    "platform": Device.Platform.values,
    "environment": Device.Environment.values,
}


@register_rule("device")
def device_rule(spec: Any, ctx: RuleContext) -> Q:
    """{"device": {"kind": "fcm", "platform": "ios", "environment": "production"}}, every key
    optional: has at least one active device, not denied permission, matching them all."""
    ctx.fields(spec, optional=tuple(DEVICE_FILTERS))
    filters = {key: ctx.choice(spec, key, choices) for key, choices in DEVICE_FILTERS.items()
               if key in spec}
    reachable = (
        Device.objects.filter(customer=OuterRef("pk"), is_active=True, **filters)
        .exclude(permission=Device.Permission.DENIED)
    )
    return Q(Exists(reachable))
