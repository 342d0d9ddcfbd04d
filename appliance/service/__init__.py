"""The service layer: one :class:`Runtime`, and the use cases every adapter (REST routes,
CLI commands) calls with the calling :class:`Principal`. Only the use cases write audit
entries."""

from ._principal import ROLES, SCOPES, Principal, Role, Scope, check_roles, operator
from ._runtime import Runtime

__all__ = ["ROLES", "SCOPES", "Principal", "Role", "Runtime", "Scope", "check_roles", "operator"]
