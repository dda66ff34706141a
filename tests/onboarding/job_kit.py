"""Files and helpers for the import job tests."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from onboarding import jobs

HEADER = ["external_id", "first_name", "time_zone", "device_kind", "device_token",
          "device_platform"]


def fcm_token(number: int) -> str:
    return f"fcm-token-{number:08d}-" + "x" * 40


def customer_row(number: int, **cells) -> list[str]:
    row = {"external_id": f"cust-{number}", "first_name": f"Name {number}",
           "time_zone": "Europe/Lisbon", "device_kind": "fcm",
           "device_token": fcm_token(number), "device_platform": "android", **cells}
    return [row[name] for name in HEADER]


def csv_bytes(rows, header=HEADER) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def customers_csv(count: int, start: int = 1) -> bytes:
    return csv_bytes(customer_row(number) for number in range(start, start + count))


def upload(content: bytes, name: str = "customers.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def job_of(content: bytes, name: str = "customers.csv", *, user=None, **options):
    """A queued job, as the upload page makes it."""
    file_format = "jsonl" if name.endswith(".jsonl") else "csv"
    return jobs.import_job_create(upload=upload(content, name), file_format=file_format,
                                  user=user, **options)


def job_url(job, view: str = "change") -> str:
    return reverse(f"admin:onboarding_importjob_{view}", args=[job.pk])


def rejects_rows(client, job) -> list[list[str]]:
    response = client.get(job_url(job, "rejects"))
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploads, progress files and rejects of each test in a folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
