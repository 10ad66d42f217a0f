"""signer_nonces: each signing key's next nonce, claimed atomically by every replica
(engine/venues/ostium_nonces.py)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signer_nonces",
        sa.Column("signer", sa.String(length=64), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("signer", "chain_id", name=op.f("pk_signer_nonces")),
    )


def downgrade() -> None:
    op.drop_table("signer_nonces")
