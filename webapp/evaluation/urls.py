"""URLs of the evaluation app."""
from django.urls import path

from . import views

app_name = "evaluation"
urlpatterns = [
    path("", views.evaluation_list, name="list"),
    path("new/", views.evaluation_new, name="new"),
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("<int:pk>/", views.evaluation_detail, name="detail"),
    path("<int:pk>/export/<str:fmt>/", views.evaluation_export, name="export"),
    path("<int:pk>/human-judging/", views.evaluation_human_judging, name="human-judging"),
]
