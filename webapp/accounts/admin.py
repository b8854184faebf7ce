from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class RefineryUserAdmin(UserAdmin):
    list_display = ("username", "email", "role", "is_superuser", "is_active")
    list_filter = ("role", "is_superuser", "is_active")
    fieldsets = (*UserAdmin.fieldsets, ("Refinery", {"fields": ("role",)}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Refinery", {"fields": ("role",)}))
