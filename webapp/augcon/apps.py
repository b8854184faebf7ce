from django.apps import AppConfig


class AugconConfig(AppConfig):
    name = "webapp.augcon"
