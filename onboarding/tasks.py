from celery import shared_task


@shared_task(acks_late=True)
def import_job_run(job_id: int) -> None:
    """A second delivery of this task (the broker hands a long task out again after its
    visibility timeout) finds the job claimed and does nothing; a dead worker's job is queued
    again by import_jobs_sweep."""
    from onboarding.jobs import import_job_run

    import_job_run(job_id=job_id)


@shared_task(acks_late=True)
def import_jobs_sweep() -> int:
    from onboarding.jobs import import_jobs_sweep

    return import_jobs_sweep()
