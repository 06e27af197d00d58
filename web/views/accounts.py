from __future__ import annotations

from django.contrib.auth import views as auth_views

from web.forms import ThrottledAuthenticationForm


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True
