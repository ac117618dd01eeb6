from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"
    default = True


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the audited site as the default `admin.site`."""

    default = False
    default_site = "portal.admin_site.AuditedAdminSite"
