from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing the module registers the API key scheme with drf-spectacular; the schema is built
        # after apps are ready.
        from contracts.tenancy import schema  # noqa: F401, PLC0415
