"""chat_changes: what changed of a chat account kept in memory, written by triggers

A replica keeps known chat accounts in memory (handlers/known_users.py) and reads this table
every second to forget the users another replica (or any other writer) changed: a user's
language or settings, an identity's user, chat or reachability (the delivery code marks an
account unreachable), a wizard started or ended. Triggers, not application code, write it,
so no writer can forget to. Careful: on SQLite a batch migration that recreates users,
identities or conversations drops their triggers; create them again after one
(`create_triggers`).

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SQLITE_NOW = "CAST(strftime('%s', 'now') AS INTEGER)"
SQLITE = [
    f"""CREATE TRIGGER chat_changes_users AFTER UPDATE OF language, settings ON users
    BEGIN INSERT INTO chat_changes (user_id, at_s) VALUES (NEW.id, {SQLITE_NOW}); END""",
    f"""CREATE TRIGGER chat_changes_users_gone AFTER DELETE ON users
    BEGIN INSERT INTO chat_changes (user_id, at_s) VALUES (OLD.id, {SQLITE_NOW}); END""",
    f"""CREATE TRIGGER chat_changes_identities
    AFTER UPDATE OF user_id, chat_id, reachable ON identities
    BEGIN
        INSERT INTO chat_changes (user_id, at_s) VALUES (OLD.user_id, {SQLITE_NOW});
        INSERT INTO chat_changes (user_id, at_s)
            SELECT NEW.user_id, {SQLITE_NOW} WHERE NEW.user_id != OLD.user_id;
    END""",
    f"""CREATE TRIGGER chat_changes_identities_gone AFTER DELETE ON identities
    BEGIN INSERT INTO chat_changes (user_id, at_s) VALUES (OLD.user_id, {SQLITE_NOW}); END""",
    f"""CREATE TRIGGER chat_changes_wizard_started AFTER INSERT ON conversations
    BEGIN INSERT INTO chat_changes (user_id, at_s)
        SELECT user_id, {SQLITE_NOW} FROM identities WHERE id = NEW.identity_id; END""",
    f"""CREATE TRIGGER chat_changes_wizard_ended AFTER DELETE ON conversations
    BEGIN INSERT INTO chat_changes (user_id, at_s)
        SELECT user_id, {SQLITE_NOW} FROM identities WHERE id = OLD.identity_id; END""",
]
SQLITE_TRIGGERS = [
    "chat_changes_users",
    "chat_changes_users_gone",
    "chat_changes_identities",
    "chat_changes_identities_gone",
    "chat_changes_wizard_started",
    "chat_changes_wizard_ended",
]

PG_NOW = "floor(extract(epoch from now()))::bigint"
POSTGRESQL = [
    f"""CREATE FUNCTION chat_changes_user() RETURNS trigger AS $$
    BEGIN
        INSERT INTO chat_changes (user_id, at_s)
            VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END, {PG_NOW});
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER chat_changes_users AFTER UPDATE OF language, settings OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION chat_changes_user()""",
    f"""CREATE FUNCTION chat_changes_identity() RETURNS trigger AS $$
    BEGIN
        INSERT INTO chat_changes (user_id, at_s) VALUES (OLD.user_id, {PG_NOW});
        IF TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id THEN
            INSERT INTO chat_changes (user_id, at_s) VALUES (NEW.user_id, {PG_NOW});
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER chat_changes_identities
    AFTER UPDATE OF user_id, chat_id, reachable OR DELETE ON identities
    FOR EACH ROW EXECUTE FUNCTION chat_changes_identity()""",
    f"""CREATE FUNCTION chat_changes_conversation() RETURNS trigger AS $$
    BEGIN
        INSERT INTO chat_changes (user_id, at_s)
            SELECT user_id, {PG_NOW} FROM identities
            WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.identity_id ELSE NEW.identity_id END;
        RETURN NULL;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER chat_changes_conversations AFTER INSERT OR DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION chat_changes_conversation()""",
]


def create_triggers() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "chat_changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("at_s", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_changes")),
    )
    op.create_index(op.f("ix_chat_changes_at_s"), "chat_changes", ["at_s"], unique=False)
    create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS chat_changes_users ON users")
        op.execute("DROP TRIGGER IF EXISTS chat_changes_identities ON identities")
        op.execute("DROP TRIGGER IF EXISTS chat_changes_conversations ON conversations")
        for name in ("chat_changes_user", "chat_changes_identity", "chat_changes_conversation"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index(op.f("ix_chat_changes_at_s"), table_name="chat_changes")
    op.drop_table("chat_changes")
