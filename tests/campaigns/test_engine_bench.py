"""The journey_tick benchmark runs end to end (at a small size) and prints its JSON line."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from campaigns.models import Enrollment, Step
from notifications.models import Send


@pytest.mark.postgres(reason="the journey_tick benchmark uses VACUUM and PostgreSQL SQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_journey_tick_bench_advances_every_enrollment_and_prints_its_line():
    out, err = StringIO(), StringIO()
    call_command("bench", "journey_tick", "--size", "250", stdout=out, stderr=err)
    line = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (line["bench"], line["size"], line["rows"]) == ("journey_tick", 250, 250)
    assert line["ours_s"] > 0 and line["ref_s"] > 0
    assert "ours: 250 advanced" in err.getvalue()
    # The reference left every enrollment where the tick had put them: at the last wait.
    last_wait = Step.objects.get(campaign__name="bench: journey tick", position=2)
    assert Enrollment.objects.filter(step=last_wait, state="active").count() == 250
    assert not Send.objects.filter(source__startswith="campaign:").exists()  # forgotten
