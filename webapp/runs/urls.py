"""URLs of the runs app."""
from django.urls import path

from webapp.library import curation_views

from . import compare, views

app_name = "runs"
urlpatterns = [
    path("", views.run_list, name="list"),
    path("compare/", compare.run_compare, name="compare"),
    path("<int:run_id>/", views.run_detail, name="detail"),
    path("<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<int:run_id>/resume/", views.run_resume, name="resume"),
    path("artifacts/<int:artifact_id>/", curation_views.artifact_detail, name="artifact"),
    path("artifacts/<int:artifact_id>/rows/<int:row_index>/", curation_views.artifact_row, name="artifact-row"),
    path(
        "artifacts/<int:artifact_id>/rows/<int:row_index>/edit/",
        curation_views.artifact_row_edit,
        name="artifact-row-edit",
    ),
    path(
        "artifacts/<int:artifact_id>/rows/<int:row_index>/<str:action>/",
        curation_views.artifact_row_mark,
        name="artifact-row-mark",
    ),
    path("artifacts/<int:artifact_id>/curation/", curation_views.artifact_curation_summary, name="artifact-curation"),
    path(
        "artifacts/<int:artifact_id>/curation/discard/",
        curation_views.artifact_curation_discard,
        name="artifact-curation-discard",
    ),
    path(
        "artifacts/<int:artifact_id>/curation/save/",
        curation_views.artifact_curation_save,
        name="artifact-curation-save",
    ),
    path("artifacts/<int:artifact_id>/download/<str:file_format>/", views.artifact_download, name="artifact-download"),
]
