"""Import jobs: a customers file uploaded in the admin, imported by a worker (the task called
here as a worker calls it), with progress, counts and the refused lines to download."""

import json
import os
import time

import pytest
from django.urls import reverse

from audiences.models import Customer
from journeyhub.celery import app as celery_app
from notifications.models import Device
from onboarding import jobs, tasks
from onboarding.models import ImportJob
from tests.onboarding.job_kit import (
    HEADER,
    csv_bytes,
    customer_row,
    customers_csv,
    fcm_token,
    job_of,
    job_url,
    media_root,  # noqa: F401  (autouse)
    rejects_rows,
    upload,
)

pytestmark = pytest.mark.django_db
ADD_URL = "admin:onboarding_importjob_add"


@pytest.fixture
def eager():
    """Tasks run in-process when enqueued, as a worker would run them."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def test_the_upload_page_creates_a_job_and_redirects_to_its_progress(admin_client, admin_user,
                                                                    media_root):  # noqa: F811
    response = admin_client.post(reverse(ADD_URL), {
        "file": upload(customers_csv(3)), "dry_run": "on"})

    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == job_url(job)
    assert (job.status, job.file_name, job.file_format) == ("queued", "customers.csv", "csv")
    assert (job.dry_run, job.atomic, job.started_by) == (True, False, admin_user)
    assert os.path.dirname(job.file.path).startswith(str(media_root))
    assert open(job.file.path, "rb").read() == customers_csv(3)
    page = admin_client.get(job_url(job))
    assert page.status_code == 200 and page.context["job"] == job
    assert page.context["refresh"]  # reloads itself until done


def test_an_upload_runs_on_a_worker_to_the_end(admin_client, eager,
                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse(ADD_URL), {"file": upload(customers_csv(5))})

    page = admin_client.get(response.url)
    job = page.context["job"]
    assert job.status == "done" and page.context["refresh"] is None
    assert Customer.objects.count() == 5
    assert "5 created, 0 updated, 0 unchanged" in page.content.decode()


def test_a_job_imports_its_file_and_ends_done_with_the_counts(admin_client):
    Customer.objects.create(external_id="cust-1", first_name="Old", bucket=1,
                            referral_code="OLDCODE001")
    job = job_of(customers_csv(4))

    tasks.import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "done" and job.written is True and job.error == ""
    assert (job.lines_total, job.lines_done, job.refused) == (4, 4, 0)
    assert (job.customers_created, job.customers_updated, job.customers_unchanged) == (3, 1, 0)
    assert (job.devices_created, job.devices_updated, job.devices_moved) == (4, 0, 0)
    assert job.started_at <= job.finished_at and job.attempts == 1
    assert Customer.objects.get(external_id="cust-1").first_name == "Name 1"
    assert Device.objects.filter(customer__external_id="cust-4").count() == 1
    assert not job.rejects
    assert not os.path.exists(jobs.progress_path(job))  # the row holds the end state
    page = admin_client.get(job_url(job)).content.decode()
    assert "3 created, 1 updated, 0 unchanged" in page
    assert "4 created, 0 updated (0 moved from another customer)" in page


def test_importing_the_same_file_again_changes_nothing():
    tasks.import_job_run(job_of(customers_csv(3)).pk)
    again = job_of(customers_csv(3))

    tasks.import_job_run(again.pk)

    again.refresh_from_db()
    assert (again.customers_created, again.customers_updated, again.customers_unchanged) == (
        0, 0, 3)
    assert (again.devices_created, again.devices_updated) == (0, 0)


def test_refused_lines_are_downloaded_with_line_reason_and_cells(admin_client):
    rows = [
        customer_row(1),
        customer_row(2, time_zone="Mars/Olympus"),
        customer_row(3, device_token="short"),
        customer_row(4, first_name="=HYPERLINK(\"http://x\")", time_zone="Nowhere"),
        customer_row(5, device_token=fcm_token(1)),  # line 2's token again
    ]
    job = job_of(csv_bytes(rows))

    tasks.import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "done" and job.refused == 4 and job.customers_created == 1
    assert Customer.objects.filter(external_id="cust-1").exists()
    rejects = rejects_rows(admin_client, job)
    assert rejects[0] == ["line", "reason", *HEADER]
    assert [row[0] for row in rejects[1:]] == ["3", "4", "5", "6"]
    assert "time_zone" in rejects[1][1] and "Mars/Olympus" in rejects[1][1]
    assert rejects[1][2:] == customer_row(2, time_zone="Mars/Olympus")
    assert rejects[2][1].startswith("device_token")
    assert rejects[3][3] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, not runs it
    assert "line 2" in rejects[4][1]
    page = admin_client.get(job_url(job)).content.decode()
    assert job_url(job, "rejects") in page


def test_rejects_of_a_json_lines_file_carry_the_original_line(admin_client):
    good = {"external_id": "j-1", "first_name": "Ana"}
    lines = [json.dumps(good), "not json", json.dumps({"external_id": "j-2", "stage": "moon"})]
    job = job_of(("\n".join(lines) + "\n").encode(), "customers.jsonl")

    tasks.import_job_run(job.pk)

    rejects = rejects_rows(admin_client, job)
    assert rejects[0] == ["line", "reason", "original line"]
    assert rejects[1][:1] + rejects[1][2:] == ["2", "not json"]
    assert rejects[2][0] == "3" and rejects[2][1].startswith("stage")
    assert json.loads(rejects[2][2]) == {"external_id": "j-2", "stage": "moon"}


def test_an_unknown_column_fails_the_job_with_the_message_and_imports_nothing(admin_client):
    content = csv_bytes([["a-1", "Ana", "blue"]], header=["external_id", "first_name",
                                                            "favourite_colour"])
    job = job_of(content)

    tasks.import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed" and job.finished_at is not None
    assert "unknown column 'favourite_colour'" in job.error
    assert not Customer.objects.exists()
    page = admin_client.get(job_url(job))
    assert "unknown column" in page.content.decode() and page.context["refresh"] is None


def test_a_dry_run_counts_and_writes_nothing(admin_client):
    job = job_of(customers_csv(3), dry_run=True)

    tasks.import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "done" and job.customers_created == 3 and job.written is False
    assert not Customer.objects.exists()
    assert "Nothing was written" in admin_client.get(job_url(job)).content.decode()


def test_an_atomic_job_with_a_refused_line_writes_nothing_and_lists_it(admin_client):
    job = job_of(csv_bytes([customer_row(1), customer_row(2, time_zone="Nowhere")]),
                 atomic=True)

    tasks.import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "done" and job.written is False and job.refused == 1
    assert not Customer.objects.exists()
    assert [row[0] for row in rejects_rows(admin_client, job)[1:]] == ["3"]


def test_a_mapping_file_renames_another_systems_columns(admin_client):
    content = csv_bytes([["u-1", "Ana"]], header=["user_id", "name"])
    mapping = {"columns": {"user_id": "external_id", "name": "first_name"}}

    admin_client.post(reverse(ADD_URL), {
        "file": upload(content), "mapping": upload(json.dumps(mapping).encode(), "map.json")})
    tasks.import_job_run(ImportJob.objects.get().pk)

    assert Customer.objects.get(external_id="u-1").first_name == "Ana"


@pytest.mark.parametrize(("field", "name", "content", "message"), [
    ("mapping", "map.json", b"{not json", "cannot be read"),
    ("mapping", "map.json", b'{"rename": {}}', '"columns", "values" and "defaults"'),
    ("file_format", "customers.xls", None, "Name the format"),
])
def test_the_upload_page_refuses_what_cannot_be_imported(admin_client, field, name, content,
                                                        message):
    data = {"file": upload(customers_csv(1))}
    if field == "mapping":
        data["mapping"] = upload(content, name)
    else:
        data["file"] = upload(customers_csv(1), name)

    response = admin_client.post(reverse(ADD_URL), data)

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert message in errors and "/tmp" not in errors
    assert not ImportJob.objects.exists()


def test_a_second_delivery_of_the_task_leaves_a_claimed_job_alone():
    job = job_of(customers_csv(2))
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=1)

    tasks.import_job_run(job.pk)

    assert not Customer.objects.exists()
    assert ImportJob.objects.get(pk=job.pk).status == "running"


def test_a_file_missing_on_the_workers_disk_fails_the_job_with_the_reason():
    job = job_of(customers_csv(2))
    os.remove(job.file.path)

    tasks.import_job_run(job.pk)

    job.refresh_from_db()
    assert job.status == "failed" and "MEDIA_ROOT" in job.error


def test_the_sweeper_queues_again_a_job_whose_worker_died(django_capture_on_commit_callbacks):
    job = job_of(customers_csv(2))
    long_ago = job.created_at.replace(year=job.created_at.year - 1)
    ImportJob.objects.filter(pk=job.pk).update(status="running", attempts=1, started_at=long_ago)

    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        assert jobs.import_jobs_sweep() == 1

    assert ImportJob.objects.get(pk=job.pk).status == "queued"
    assert len(enqueued) == 1
    tasks.import_job_run(job.pk)  # the enqueued run, as a worker takes it
    job.refresh_from_db()
    assert (job.status, job.attempts, job.customers_created) == ("done", 2, 2)


def test_the_sweeper_leaves_a_live_job_and_fails_one_that_kept_dying():
    live, dying = job_of(customers_csv(1)), job_of(customers_csv(1))
    long_ago = live.created_at.replace(year=live.created_at.year - 1)
    ImportJob.objects.filter(pk=live.pk).update(status="running", attempts=1,
                                                started_at=long_ago)
    with open(jobs.progress_path(live), "w") as heartbeat:  # as its worker writes it
        json.dump({"attempt": 1, "lines": 10, "refused": 0, "phase": "reading",
                   "at": time.time()}, heartbeat)
    ImportJob.objects.filter(pk=dying.pk).update(status="running", attempts=jobs.MAX_ATTEMPTS,
                                                 started_at=long_ago)

    assert jobs.import_jobs_sweep() == 1

    assert ImportJob.objects.get(pk=live.pk).status == "running"
    dying.refresh_from_db()
    assert dying.status == "failed" and "stopped 3 times" in dying.error


def test_deleting_a_job_deletes_its_files(admin_client):
    job = job_of(csv_bytes([customer_row(1, time_zone="Nowhere")]))
    tasks.import_job_run(job.pk)
    job.refresh_from_db()
    paths = [job.file.path, job.rejects.path]
    assert all(os.path.exists(path) for path in paths)

    response = admin_client.post(job_url(job, "delete"), {"post": "yes"})

    assert response.status_code == 302 and not ImportJob.objects.exists()
    assert not any(os.path.exists(path) for path in paths)
    assert not os.path.exists(os.path.dirname(paths[0]))  # the upload's own folder


def test_the_list_shows_each_jobs_state_progress_and_counts(admin_client):
    done = job_of(csv_bytes([customer_row(1), customer_row(2, time_zone="Nowhere")]))
    tasks.import_job_run(done.pk)
    running = job_of(customers_csv(10))
    ImportJob.objects.filter(pk=running.pk).update(status="running", attempts=1,
                                                   lines_total=10, started_at=done.created_at)
    with open(jobs.progress_path(running), "w") as heartbeat:
        json.dump({"attempt": 1, "lines": 4, "refused": 1, "phase": "reading",
                   "at": time.time()}, heartbeat)

    page = admin_client.get(reverse("admin:onboarding_importjob_changelist"))

    text = page.content.decode()
    assert page.status_code == 200 and "Import customers" in text
    assert "4 of ~10 (40%)" in text
    assert "1 created, 0 updated, 0 unchanged" in text
    assert job_url(done, "rejects") in text
