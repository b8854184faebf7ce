"""URLs of the annotation app: researchers' campaign pages, and the workspace for a campaign's assignees."""
from django.urls import path

from . import views

app_name = "annotation"
urlpatterns = [
    path("", views.campaign_list, name="list"),
    path("new/", views.campaign_new, name="new"),
    path("<int:campaign_id>/", views.campaign_detail, name="detail"),
    path("<int:campaign_id>/export/<str:fmt>/", views.campaign_export, name="export"),
    path("<int:campaign_id>/write-back/", views.campaign_write_back, name="write-back"),
    path("<int:campaign_id>/open/", views.campaign_set_open, name="set-open"),
    path("<int:campaign_id>/items/<int:item_id>/", views.item_detail, name="item"),
    path("<int:campaign_id>/work/", views.workspace, name="workspace"),
    path("<int:campaign_id>/work/judge/", views.judge, name="judge"),
    path("<int:campaign_id>/work/undo/", views.undo, name="undo"),
]
