"""Report rows for django-import-export (CSV, XLSX, JSON), export only."""

from analytics.exports import ExportError, ExportFilter

REPORT_NAMES = ("campaign_report", "journey_map")


def report_export(*, name: str, file_format: str, filters: ExportFilter) -> bytes:
    raise ExportError(f"The {name} export is not available yet.")
