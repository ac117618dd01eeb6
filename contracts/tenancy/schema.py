"""OpenAPI descriptions of the API's bearer keys (drf-spectacular extensions): organisation keys and eval runner keys."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "contracts.tenancy.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Organisation API key: `Bearer vcp_…`"}


class RunnerKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "contracts.renewal.auth.RunnerKeyAuthentication"
    name = "EvalRunnerKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "Vendor eval runner key: `Bearer vcr_…`"}
