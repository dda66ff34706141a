"""The customer admin's data rights: erase customers (an action, after a confirmation page)
and download a customer's data as JSON (a link on their page), through the same services and
export as the API."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audiences.access import access_export
from audiences.models import Customer, CustomerErasure, CustomerMerge
from audiences.services_identity import customer_erase

# Each erasure is a transaction of its own, deleting up to every event of the customer: a
# selection bigger than this is refused rather than holding the request for minutes.
ERASE_AT_ONCE = 20


class CustomerDataRightsMixin:
    """For CustomerAdmin: the erase action and the data export link and view."""

    actions = ("erase_selected",)

    @admin.action(description="Erase selected customers (cannot be undone)",
                  permissions=["delete"])
    def erase_selected(self, request, queryset):
        count = queryset.count()
        if count > ERASE_AT_ONCE:
            self.message_user(request, f"Erase at most {ERASE_AT_ONCE} customers at a time "
                                       f"({count:,} are selected).", messages.ERROR)
            return None
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(request, "admin/audiences/customer/erase_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta,
                "title": "Erase customers?", "customers": list(queryset),
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            })
        who = f"admin user {request.user.get_username()}"
        for customer in queryset:
            customer_erase(customer=customer, erased_by=who)
        self.message_user(request, f"Erased {count} customer(s); the erasures are recorded "
                                   "under Customer erasures.", messages.SUCCESS)
        return None

    def get_urls(self):
        export = path("<path:object_id>/data-export/",
                      self.admin_site.admin_view(self.data_export_view),
                      name="audiences_customer_data_export")
        return [export, *super().get_urls()]

    def data_export_view(self, request, object_id):
        """The customer's data, as GET /api/v1/customers/{id}/export/ gives it. Needs the
        change permission: it is everything about a person, in one file."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        customer = Customer.objects.filter(pk=unquote(object_id)).first() \
            if unquote(object_id).isdigit() else None
        if customer is None:
            raise Http404("No such customer.")
        response = StreamingHttpResponse(access_export(customer),
                                         content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.json"'
        return response

    @admin.display(description="their data")
    def data_rights(self, customer: Customer) -> str:
        if customer.pk is None:
            return "-"
        url = reverse("admin:audiences_customer_data_export", args=[customer.pk])
        return format_html(
            '<a href="{}">Download their data (JSON)</a> · to erase them, select them in the '
            "list and choose “Erase selected customers”.", url)


@admin.register(CustomerErasure)
class CustomerErasureAdmin(admin.ModelAdmin):
    """The record of erasures: written by customer_erase only, never edited here."""

    list_display = ("erased_at", "erased_by", "removed")
    search_fields = ("erased_by",)
    search_help_text = "An external id finds its erasures (by its hash); other text, who erased."
    date_hierarchy = "erased_at"
    readonly_fields = ("external_id_hash", "erased_by", "erased_at", "removed")
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        hashed = queryset.filter(external_id_hash=CustomerErasure.hash_external_id(term))
        if term and hashed.exists():
            return hashed, False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(CustomerMerge)
class CustomerMergeAdmin(admin.ModelAdmin):
    """Anonymous customers merged into known ones at login: written by customer_merge only."""

    list_display = ("merged_at", "anonymous_external_id", "customer", "moved")
    search_fields = ("=anonymous_external_id", "=customer__external_id")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    date_hierarchy = "merged_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
