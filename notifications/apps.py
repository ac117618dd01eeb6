from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Contracts' e-mails to organisations go through this app's outbox (sent once, logged): the
        # port is filled once models are ready, hence the import here.
        from notifications.services import outbox_port_install  # noqa: PLC0415

        outbox_port_install()
