from django.apps import AppConfig


class AftConfig(AppConfig):
    name = "webapp.aft"
