"""URLs of the augcon app."""
from django.urls import path

from . import views

app_name = "augcon"
urlpatterns = [
    path("new/", views.augcon_new, name="new"),
    path("new/estimate/", views.augcon_estimate, name="estimate"),
    path("runs/<int:run_id>/trees/<str:document_id>/", views.augcon_tree, name="tree"),
]
