"""URLs of the aft app."""
from django.urls import path

from . import views

app_name = "aft"
urlpatterns = [
    path("new/", views.aft_new, name="new"),
    path("new/estimate/", views.aft_estimate, name="estimate"),
    path("data/new/", views.aft_data_new, name="data-new"),
    path("runs/<int:run_id>/prompt/", views.aft_prompt, name="prompt"),
]
