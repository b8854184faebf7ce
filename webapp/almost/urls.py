"""URLs of the almost app: the run form (with the rubric editor) and its live cost estimate."""
from django.urls import path

from . import views

app_name = "almost"
urlpatterns = [
    path("new/", views.almost_new, name="new"),
    path("new/estimate/", views.almost_estimate, name="estimate"),
    path("runs/<int:pk>/evaluate-policies/", views.almost_evaluate_policies, name="evaluate-policies"),
]
