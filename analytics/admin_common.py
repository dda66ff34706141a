"""What the report pages share: the date range form, how a rate or an empty cell is shown,
and who may see them."""

from datetime import date

from django import forms
from django.core.exceptions import PermissionDenied

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


class DateRangeForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="First UTC day (empty: from the start).")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            help_text="Last UTC day, included (empty: to today).")

    def clean(self):
        data = super().clean()
        for name in ("since", "until"):
            value = data.get(name)
            if value and not FIRST_DAY <= value <= LAST_DAY:
                self.add_error(name, f"Give a day between {FIRST_DAY} and {LAST_DAY}.")
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The last day must not be before the first.")
        return data


NO_DATA = ""  # a cell with no data: empty, as in the CSV and XLSX exports (null in JSON)


def pct(value: float | None, digits: int = 1) -> str:
    return NO_DATA if value is None else f"{value * 100:.{digits}f}%"


def counts_row(label: str, counts) -> dict:
    """A slice's numbers, formatted; no data (a rate of nothing, customers per platform) is
    an empty cell."""
    numbers = ("targeted", "sent", "delivered", "failed", "skipped", "pending", "opened",
               "conversions", "untargeted_conversions")
    row = {
        "label": label, **{name: _count(getattr(counts, name)) for name in numbers},
        "open_rate": pct(counts.open_rate), "conversion_rate": pct(counts.conversion_rate),
        "revenue": f"{counts.revenue:,.2f}",
        "untargeted_revenue": f"{counts.untargeted_revenue:,.2f}",
    }
    return row


def _count(value: int | None) -> str:
    return NO_DATA if value is None else f"{value:,}"


def require_view(request) -> None:
    if not request.user.has_perm("campaigns.view_campaign"):
        raise PermissionDenied("You may not view campaigns.")
