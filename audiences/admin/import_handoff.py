"""Uploads an import page hands to an upper app instead of previewing them: onboarding imports a
big customers file as a job with a progress page. audiences cannot import onboarding, so
onboarding registers its handler here in its AppConfig.ready()."""

from collections.abc import Callable

from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse

# (request, the uploaded file, its format as the form names it: "csv", "xlsx") -> a response
# that answers the upload, or None to leave it to django-import-export's preview.
ImportHandoff = Callable[[HttpRequest, UploadedFile, str], HttpResponse | None]
_handoffs: dict[str, list[ImportHandoff]] = {}


def register_import_handoff(model_label: str, handoff: ImportHandoff) -> None:
    """``model_label``: the model whose import page hands uploads over, "audiences.customer"."""
    handlers = _handoffs.setdefault(model_label, [])
    if handoff not in handlers:
        handlers.append(handoff)


class ImportHandoffMixin:
    """For an import-export ModelAdmin: a valid upload goes to the registered handlers first."""

    def import_action(self, request, **kwargs):
        handlers = _handoffs.get(self.model._meta.label_lower)
        if request.method == "POST" and handlers and self.has_import_permission(request):
            form = self.create_import_form(request)
            if form.is_valid():
                upload = form.cleaned_data["import_file"]
                file_format = self.get_import_formats()[int(form.cleaned_data["format"])]()
                for handoff in handlers:
                    response = handoff(request, upload, file_format.get_title())
                    upload.seek(0)  # the preview reads it from the start
                    if response is not None:
                        return response
        return super().import_action(request, **kwargs)
