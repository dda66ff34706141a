"""Who may import through jobs, and the Customers import handing big files to a job while
small ones keep django-import-export's preview."""

import io
import threading
import time

import openpyxl
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.db import connections
from django.urls import reverse

from analytics.roles import ANALYST, MARKETER
from audiences.models import Customer
from onboarding import jobs, tasks
from onboarding.models import ImportJob
from tests.onboarding.job_kit import (
    customers_csv,
    job_of,
    job_url,
    media_root,  # noqa: F401  (autouse)
    upload,
)

CUSTOMERS_IMPORT = "admin:audiences_customer_import"
ADD_URL = "admin:onboarding_importjob_add"


def _staff(username: str, *, group: str | None = None, permissions=()) -> User:
    user = User.objects.create_user(username, password="pw", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    return user


def _customers_import(client, content: bytes, name: str = "customers.csv"):
    """The Customers list's Import, step 1: upload (import-export's format picked by name)."""
    page = client.get(reverse(CUSTOMERS_IMPORT))
    extension = name.rsplit(".", 1)[1]
    choice = next(value for value, label in page.context["form"].fields["format"].choices
                  if label.lower() == extension)
    return client.post(reverse(CUSTOMERS_IMPORT), {
        "import_file": upload(content, name), "format": choice, "resource": "0"})


@pytest.mark.django_db
def test_a_big_file_on_the_customers_import_becomes_a_job(admin_client, settings):
    settings.CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS = 3

    response = _customers_import(admin_client, customers_csv(4))

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == job_url(job)
    assert job.atomic and not job.dry_run and job.file_format == "csv"
    assert "too many to preview" in " ".join(m.message for m in get_messages(response.wsgi_request))
    tasks.import_job_run(job.pk)
    assert Customer.objects.count() == 4


@pytest.mark.django_db
def test_a_small_file_on_the_customers_import_keeps_the_preview(admin_client, settings):
    settings.CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS = 3

    response = _customers_import(admin_client, customers_csv(3))

    assert response.status_code == 200
    assert response.context["result"].totals["new"] == 3  # import-export's dry run
    assert not ImportJob.objects.exists() and not Customer.objects.exists()


@pytest.mark.django_db
def test_a_big_spreadsheet_is_refused_with_the_way_forward(admin_client, settings):
    settings.CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS = 3
    workbook = openpyxl.Workbook()
    for number in range(5):
        workbook.active.append([f"x-{number}"])
    content = io.BytesIO()
    workbook.save(content)

    response = _customers_import(admin_client, content.getvalue(), "customers.xlsx")

    assert response.status_code == 302 and response.url == reverse(CUSTOMERS_IMPORT)
    message = " ".join(m.message for m in get_messages(response.wsgi_request))
    assert "4 rows" in message and "Save it as CSV" in message
    assert not ImportJob.objects.exists()


@pytest.mark.django_db
def test_whoever_may_import_customers_follows_the_job_they_started(client, settings):
    settings.CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS = 3
    importer = _staff("importer", permissions=["audiences.change_customer",
                                               "audiences.view_customer"])
    client.force_login(importer)

    response = _customers_import(client, customers_csv(4))

    assert client.get(response.url).status_code == 200
    assert client.get(reverse("admin:onboarding_importjob_changelist")).status_code == 403


@pytest.mark.django_db
def test_staff_without_rights_get_403(client):
    job = job_of(customers_csv(1))
    client.force_login(_staff("nobody"))

    assert client.get(reverse(ADD_URL)).status_code == 403
    assert client.post(reverse(ADD_URL), {"file": upload(customers_csv(1))}).status_code == 403
    assert client.get(job_url(job)).status_code == 403
    assert client.get(job_url(job, "rejects")).status_code == 403
    assert client.get(reverse("admin:onboarding_importjob_changelist")).status_code == 403
    assert ImportJob.objects.count() == 1


@pytest.mark.django_db
def test_marketers_import_and_analysts_only_look(client):
    other = job_of(customers_csv(1))
    client.force_login(_staff("mia", group=MARKETER))

    response = client.post(reverse(ADD_URL), {"file": upload(customers_csv(2))})

    assert response.status_code == 302
    assert client.get(job_url(other)).status_code == 200
    client.force_login(_staff("alex", group=ANALYST))
    assert client.get(job_url(other)).status_code == 200
    assert client.get(reverse(ADD_URL)).status_code == 403


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_progress_page_shows_lines_done_while_the_import_runs(admin_client, monkeypatch):
    """The import is one transaction: what the page shows meanwhile comes from its worker's
    progress file (written more often here than every second, to catch it mid-file)."""
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    job = job_of(customers_csv(20_000))
    seen = []

    def worker():
        try:
            tasks.import_job_run(job.pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        context = admin_client.get(job_url(job)).context
        seen.append((context["job"].status, context["lines_done"]))
        time.sleep(0.2)
    thread.join()

    assert any(status == "running" and 0 < lines for status, lines in seen), seen
    job.refresh_from_db()
    assert job.status == "done" and job.lines_done == 20_000
