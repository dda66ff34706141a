"""The import benchmarks run end to end at a small size and print their JSON line."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from audiences.models import Customer
from notifications.models import Device


def bench(name: str, size: int) -> tuple[dict, str]:
    out, err = StringIO(), StringIO()
    call_command("bench", name, "--size", str(size), stdout=out, stderr=err)
    return json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


@pytest.mark.postgres(reason="the reference is PostgreSQL COPY, and ours runs in a child "
                             "process that needs the committed test database")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_import_customers_bench_imports_the_file_and_cleans_up():
    line, err = bench("import_customers", 300)

    assert (line["bench"], line["size"]) == ("import_customers", 300)
    assert line["ours_s"] > 0 and line["ref_s"] > 0 and line["peak_rss_mb"] > 0
    assert "reference:" in err and "ours:" in err
    assert not Customer.objects.filter(external_id__startswith="bench-import-").exists()
    assert not Customer.objects.filter(external_id__startswith="ref-bench-import-").exists()
    Customer.objects.filter(external_id__startswith="bench-other-").delete()


@pytest.mark.postgres(reason="the reference is timed against PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_customers_batch_bench_posts_every_customer():
    line, err = bench("customers_batch", 1500)

    assert line["customers_per_s"] > 0 and line["batch"] == 1000
    assert "API:" in err and "bulk_create:" in err
    assert not Device.objects.exists()
