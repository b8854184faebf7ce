"""URLs of the training app."""

from django.urls import path

from . import views

app_name = "training"
urlpatterns = [
    path("new/", views.training_new, name="new"),
    path("new/estimate/", views.training_estimate, name="estimate"),
    path("rl/new/", views.rl_new, name="rl-new"),
    path("rl/new/estimate/", views.rl_estimate, name="rl-estimate"),
]
