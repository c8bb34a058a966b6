"""Roles within a tenant and the one table that maps actions to the least role allowed."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    VIEWER = "viewer"
    STREAMER = "streamer"
    MODERATOR = "moderator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank


_RANK = {Role.VIEWER: 0, Role.STREAMER: 1, Role.MODERATOR: 2, Role.ADMIN: 3}


class Permission(enum.StrEnum):
    TENANT_READ = "tenant:read"
    TENANT_UPDATE = "tenant:update"
    USERS_LIST = "users:list"
    USERS_MANAGE = "users:manage"
    PROFILES_EDIT_ANY = "profiles:edit_any"
    AUDIT_READ_TENANT = "audit:read_tenant"
    EVENTS_CREATE = "events:create"
    EVENTS_MANAGE_ANY = "events:manage_any"
    CHAT_MODERATE = "chat:moderate"
    SSO_MANAGE = "sso:manage"
    MFA_RESET = "mfa:reset"
    API_KEYS_MANAGE = "api_keys:manage"
    ANALYTICS_TENANT = "analytics:tenant"
    CONTAINERS_READ_TENANT = "containers:read_tenant"
    WEBHOOKS_MANAGE = "webhooks:manage"


PERMISSIONS: dict[Permission, Role] = {
    Permission.TENANT_READ: Role.VIEWER,
    Permission.TENANT_UPDATE: Role.ADMIN,
    Permission.USERS_LIST: Role.MODERATOR,
    Permission.USERS_MANAGE: Role.ADMIN,
    Permission.PROFILES_EDIT_ANY: Role.ADMIN,
    Permission.AUDIT_READ_TENANT: Role.ADMIN,
    Permission.EVENTS_CREATE: Role.STREAMER,
    Permission.EVENTS_MANAGE_ANY: Role.ADMIN,
    Permission.CHAT_MODERATE: Role.MODERATOR,
    Permission.SSO_MANAGE: Role.ADMIN,
    Permission.MFA_RESET: Role.ADMIN,
    Permission.API_KEYS_MANAGE: Role.ADMIN,
    Permission.ANALYTICS_TENANT: Role.ADMIN,
    Permission.CONTAINERS_READ_TENANT: Role.ADMIN,
    Permission.WEBHOOKS_MANAGE: Role.ADMIN,
}


def role_allows(role: Role, permission: Permission) -> bool:
    return role >= PERMISSIONS[permission]
