from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "web"

    def ready(self) -> None:
        from web import permissions

        permissions.connect()  # role changes drop the cached permissions at once
