from django.urls import path

from . import federation, views

urlpatterns = [
    path("", views.query, name="aws-query"),
    path("federation", federation.endpoint, name="aws-federation"),
]
