"""Authentication: the user file, PAM, client-certificate users, and failed-login slowdown."""
from provider.auth.authenticator import Authenticator, PamSettings, parse_basic
from provider.auth.throttle import FailureThrottle
from provider.auth.users import ROLES, User, UserError, UserFile

__all__ = ["Authenticator", "FailureThrottle", "PamSettings", "ROLES", "User", "UserError",
           "UserFile", "parse_basic"]
