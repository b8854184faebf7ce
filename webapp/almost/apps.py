from django.apps import AppConfig


class AlmostConfig(AppConfig):
    name = "webapp.almost"
