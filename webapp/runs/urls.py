"""URLs of the runs app."""
from django.urls import path

from . import compare, views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("compare/", compare.run_compare, name="compare"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<int:run_id>/resume/", views.run_resume, name="resume"),
    path("artifacts/<int:artifact_id>/", views.artifact_detail, name="artifact"),
    path("artifacts/<int:artifact_id>/download/<str:file_format>/", views.artifact_download, name="artifact-download"),
]
