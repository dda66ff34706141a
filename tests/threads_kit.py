"""Work at the same moment from several threads, each on its own database connection, as
several web or worker processes would do it (PostgreSQL: SQLite serialises writers)."""

import threading

from django.db import connection


def in_threads(work, count: int = 3) -> list:
    """Run ``work()`` in ``count`` threads started together; their results, in the order they
    finished. An exception in any thread fails the calling test."""
    barrier, results, errors = threading.Barrier(count), [], []

    def run():
        try:
            barrier.wait()
            results.append(work())
        except Exception as error:  # reported below, in the test's thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results
