"""Imported customers are a brand's audience at once: a broadcast to a segment of them goes out
to their imported devices, personalised with their imported attributes."""

from io import StringIO

import pytest
from django.core.management import call_command

from audiences.models import Segment
from notifications.models import Delivery, Template
from notifications.providers import locmem
from notifications.services import send_create
from tests.notifications.sending_kit import quiet_hours_off, run

pytestmark = pytest.mark.django_db
FCM = "imported-{:03d}:APA91bFq3x_-9Fq3x_-9Fq3x_-9Fq3x_-9Fq3x"


def test_a_broadcast_to_a_segment_of_imported_customers_reaches_their_devices(tmp_path,
                                                                             settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    quiet_hours_off()
    path = tmp_path / "customers.csv"
    lines = ["external_id,first_name,attr.plan,device_kind,device_token,device_platform"]
    lines += [f"c-{i},Name{i},{'pro' if i % 2 else 'free'},fcm,{FCM.format(i)},android"
              for i in range(40)]
    path.write_text("\n".join(lines) + "\n")
    call_command("import_customers", str(path), "--no-progress", stdout=StringIO())
    pros = Segment.objects.create(name="Pro plan", rules={
        "attribute": {"key": "plan", "op": "eq", "value": "pro"}})
    template = Template.objects.create(name="Pro offer", title="{{ customer.first_name }}",
                                       body="Your {{ customer.attributes.plan }} offer")

    send = run(send_create(template=template, segment=pros))

    sent = Delivery.objects.filter(send=send, status=Delivery.Status.SENT)
    assert sent.count() == 20
    tokens = {message.token for message in locmem.outbox}
    assert tokens == {FCM.format(i) for i in range(1, 40, 2)}
    assert {message.body for message in locmem.outbox} == {"Your pro offer"}
    locmem.outbox.clear()

