"""/api/: the OpenAPI document, its interactive docs, and version 1 of the API."""

from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

app_name = "api"

urlpatterns = [
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path(
        "docs",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:openapi", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    path("v1/", include("idp.api.operations.urls")),
    path("v1/", include("idp.api.directory.urls")),
]
