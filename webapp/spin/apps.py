from django.apps import AppConfig


class SpinConfig(AppConfig):
    name = "webapp.spin"
