"""Join the domain branches (chat, SSO, MFA, containers, jobs/analytics) into one head.

Revision ID: 0010_merge_heads
Revises: 0004_chat, 0005_sso, 0006_mfa, 0007_containers, 0009_analytics
Create Date: 2026-11-25 19:20:00
"""

from collections.abc import Sequence

revision: str = "0010_merge_heads"
down_revision: str | Sequence[str] | None = (
    "0004_chat",
    "0005_sso",
    "0006_mfa",
    "0007_containers",
    "0009_analytics",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
