"""URLs of the registry app."""

from django.urls import path

from . import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:pk>/", views.model_detail, name="detail"),
    path("register/local/", views.model_register_local, name="register-local"),
    path("register/endpoint/", views.model_register_endpoint, name="register-endpoint"),
]
