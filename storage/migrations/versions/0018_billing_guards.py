"""billing guards and kept standings: a subscription canceled at its period's end; the
marketplace's per-agent summary (agent_summaries, filled by the next roll-up); webhook signing
secrets sealed
(AES-GCM under MAXXIT_MASTER_KEY, the row bound in, as wallets/vault_webhooks.py does) and the
plaintext column dropped

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29

A migration is frozen in time, so the sealing is written out here (with `cryptography`, as
the vault does) rather than imported from wallets/, which may change later.
"""

from __future__ import annotations

import base64
import hashlib
import os

import sqlalchemy as sa
from alembic import op
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import storage.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

channels = sa.table(
    "notification_channels",
    sa.column("id", sa.BigInteger),
    sa.column("user_id", sa.BigInteger),
    sa.column("address", sa.String),
    sa.column("secret", sa.String),
    sa.column("secret_sealed", sa.LargeBinary),
    sa.column("secret_key_id", sa.String),
)


def _master_key() -> tuple[str, bytes] | None:
    text = os.environ.get("MAXXIT_MASTER_KEY", "").strip()
    if not text:
        return None
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise RuntimeError("MAXXIT_MASTER_KEY must be 32 bytes, base64-encoded")
    return hashlib.sha256(b"maxxit-master-key:" + raw).hexdigest()[:16], raw


def _row_binding(row: sa.Row) -> bytes:
    return f"maxxit-webhook-secret:{row.id}:{row.user_id}:{row.address}".encode()


def upgrade() -> None:
    bind = op.get_bind()
    # checked before any change: a refusal leaves the database as it was
    plain = bind.execute(
        sa.select(channels.c.id, channels.c.user_id, channels.c.address, channels.c.secret).where(
            channels.c.secret.is_not(None)
        )
    ).all()
    key = _master_key() if plain else None
    if plain and key is None:
        raise RuntimeError(
            f"{len(plain)} webhook signing secret(s) are stored in plain text and must be "
            "encrypted: set MAXXIT_MASTER_KEY (the vault's key) and run the upgrade again"
        )
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column(
                "cancel_at_period_end", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("secret_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("secret_key_id", sa.String(length=32), nullable=True))
    for row in plain:
        assert key is not None
        nonce = os.urandom(12)
        sealed = AESGCM(key[1]).encrypt(nonce, row.secret.encode(), _row_binding(row))
        bind.execute(
            channels.update()
            .where(channels.c.id == row.id)
            .values(secret_sealed=nonce + sealed, secret_key_id=key[0], secret=None)
        )
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("secret")
    _create_summaries()


def _create_summaries() -> None:
    money = storage.types.Money(precision=38, scale=18)
    op.create_table(
        "agent_summaries",
        sa.Column("agent_id", ID, autoincrement=False, nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("followers", sa.Integer(), nullable=False),
        sa.Column("live_trades", sa.Integer(), nullable=False),
        sa.Column("live_return", money, nullable=True),
        sa.Column("live_sharpe", money, nullable=True),
        sa.Column("live_drawdown", money, nullable=True),
        sa.Column("live_win_rate", money, nullable=True),
        sa.Column("paper_trades", sa.Integer(), nullable=False),
        sa.Column("paper_return", money, nullable=True),
        sa.Column("paper_win_rate", money, nullable=True),
        sa.Column("place_group", sa.Integer(), nullable=False),
        sa.Column("place_a", sa.Integer(), nullable=False),
        sa.Column("place_b", sa.BigInteger(), nullable=False),
        sa.Column("place_c", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_summaries_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_summaries")),
    )
    op.create_index(
        "ix_agent_summaries_place",
        "agent_summaries",
        ["place_group", "place_a", "place_b", "place_c", "agent_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_agent_summaries_place", table_name="agent_summaries")
    op.drop_table("agent_summaries")
    with op.batch_alter_table("notification_channels") as batch:
        batch.add_column(sa.Column("secret", sa.String(length=128), nullable=True))
    bind = op.get_bind()
    sealed = bind.execute(
        sa.select(
            channels.c.id, channels.c.user_id, channels.c.address, channels.c.secret_sealed
        ).where(channels.c.secret_sealed.is_not(None))
    ).all()
    key = _master_key() if sealed else None
    if sealed and key is None:
        raise RuntimeError("webhook secrets are sealed: MAXXIT_MASTER_KEY is needed to go back")
    for row in sealed:
        assert key is not None
        blob = row.secret_sealed
        secret = AESGCM(key[1]).decrypt(blob[:12], blob[12:], _row_binding(row)).decode()
        bind.execute(channels.update().where(channels.c.id == row.id).values(secret=secret))
    with op.batch_alter_table("notification_channels") as batch:
        batch.drop_column("secret_key_id")
        batch.drop_column("secret_sealed")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("cancel_at_period_end")
