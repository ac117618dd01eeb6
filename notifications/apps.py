from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Contracts' e-mails to organisations go through this app's outbox (sent once, logged).
        from contracts.outbox import organization_mail_sender_set
        from notifications.services import notice_send_adhoc

        organization_mail_sender_set(notice_send_adhoc)
