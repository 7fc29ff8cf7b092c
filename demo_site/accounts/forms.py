"""Small plain forms (no passwords: demo users get an unusable one)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator


class RegisterForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
    email = forms.EmailField(required=False)


class ProfileForm(forms.Form):
    email = forms.EmailField(required=False)
    bio = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class BulkImportForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=50, initial=3)
