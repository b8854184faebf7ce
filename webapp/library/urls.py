"""URLs of the library app."""

from django.urls import path

from . import views

app_name = "library"
urlpatterns = [
    path("", views.index, name="index"),
    path("corpora/", views.corpus_list, name="corpus-list"),
    path("corpora/upload/", views.corpus_upload, name="corpus-upload"),
    path("corpora/<int:pk>/", views.corpus_detail, name="corpus-detail"),
    path("corpora/<int:pk>/append/", views.corpus_append, name="corpus-append"),
    path("documents/<int:pk>/", views.document_detail, name="document-detail"),
    path("documents/<int:pk>/text/", views.document_download, name="document-download"),
    path("seed-prompts/", views.seedset_list, name="seedset-list"),
    path("seed-prompts/upload/", views.seedset_upload, name="seedset-upload"),
    path("seed-prompts/<int:pk>/", views.seedset_detail, name="seedset-detail"),
    path("few-shot/", views.fewshot_list, name="fewshot-list"),
    path("few-shot/upload/", views.fewshot_upload, name="fewshot-upload"),
    path("few-shot/<int:pk>/", views.fewshot_detail, name="fewshot-detail"),
    path("datasets/", views.dataset_list, name="dataset-list"),
    path("datasets/upload/", views.dataset_upload, name="dataset-upload"),
    path("rubrics/", views.rubric_list, name="rubric-list"),
    path("rubrics/new/", views.rubric_create, name="rubric-create"),
    path("rubrics/<int:pk>/", views.rubric_detail, name="rubric-detail"),
    path("rubrics/<int:pk>/edit/", views.rubric_edit, name="rubric-edit"),
]
