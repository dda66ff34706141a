"""A big file is checked on forked helpers and staged as COPY text: the same customers, the
same refusals and the same values, down to tabs, backslashes and line breaks, as when it is
checked in the importing process."""

from io import StringIO

import pytest
from django.core.management import call_command

from audiences.models import Customer
from onboarding import parallel

pytestmark = pytest.mark.django_db
LINES = [
    "external_id,first_name,last_name,attributes,push_opt_out",
    'u-1,"Tab\there","Back\\\\slash \\N","{""note"": ""a\\\\nb\\tc""}",1',
    'u-2,"Two\nlines",Ok,,0',
    "u-3,Bad,,not json,",
    "u-4,Fine,Silva,,yes",
]


def run(path) -> str:
    out = StringIO()
    call_command("import_customers", str(path), "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def stored() -> list[tuple]:
    return list(Customer.objects.order_by("external_id").values_list(
        "external_id", "first_name", "last_name", "attributes", "push_opt_out"))


@pytest.mark.postgres(reason="helpers hand the importing process COPY text, for PostgreSQL")
def test_helpers_stage_exactly_what_the_importing_process_would(tmp_path, monkeypatch):
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    out_here = run(path)
    here = stored()
    Customer.objects.all().delete()
    monkeypatch.setattr(parallel, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(parallel, "CHUNK", 2)  # several pieces, in order

    out_helpers = run(path)

    assert out_helpers == out_here
    assert stored() == here
    assert here[0][1:4] == ("Tab\there", "Back\\\\slash \\N", {"note": "a\\nb\tc"})
    assert here[1][1] == "Two\nlines"
    assert "line 5: attributes: not a JSON object" in out_here
