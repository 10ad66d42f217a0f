"""Webhook signing secrets are sealed at rest by the vault: the database holds no plaintext,
the receiver still verifies every signature, `maxxit vault rotate` re-seals them under a new
master key and they keep working, the secret never reaches a log, and the migration seals
the secrets stored in plain text before it."""

from __future__ import annotations

import base64
import logging
import sqlite3

import pytest
from sqlalchemy import select, text

from engine.channels.dispatch import ChannelDispatcher
from engine.channels.senders import WebhookSender
from handlers.channels import channel_text
from storage.db import sqlite_url
from storage.migrate import upgrade_sync
from storage.models import NotificationChannel
from tests.chat_helpers import make_world, text_of
from tests.test_channels import VAULT, Alerts, closed, hooks, opened, user_id, with_webhook  # noqa: F401
from wallets.vault import MasterKey, Vault
from wallets.vault_webhooks import WebhookSecrets, rotate_webhook_secrets

NEW_KEY = base64.b64encode(b"n" * 32).decode()


async def test_secrets_are_sealed_signed_rotated_and_never_logged(sessions, hooks, caplog) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    caplog.set_level(logging.DEBUG)
    site, state = hooks
    world, uid = await with_webhook(sessions, site, state)
    secret = state["secret"]  # shown to Ann once, when she added it

    # the database holds no plaintext in any column of the row
    async with sessions() as s:
        raw = (await s.execute(text("select * from notification_channels"))).one()
    assert not any(secret.encode() in (v if isinstance(v, bytes) else str(v).encode())
                   for v in raw)  # fmt: skip
    async with sessions() as s:
        row = (await s.execute(select(NotificationChannel))).scalar_one()
    assert row.secret_key_id == VAULT.current.key_id and len(row.secret_sealed or b"") > 40

    def sender(vault: Vault) -> Alerts:
        open_secret = WebhookSecrets(vault).open
        return Alerts(world, ChannelDispatcher(sessions, channel_text, None,
                      WebhookSender(site.fetcher()), open_secret=open_secret))  # fmt: skip

    assert await sender(VAULT).send(opened(uid, 1)) == 1  # the receiver checked the signature
    # rotation: a new master key; the old one only opens what is not re-sealed yet
    rotated_vault = Vault(MasterKey.parse(NEW_KEY), (VAULT.current,))
    async with sessions() as s, s.begin():
        result = await rotate_webhook_secrets(s, rotated_vault)
    assert (result.rotated, result.unreadable) == (1, [])
    new_only = Vault(MasterKey.parse(NEW_KEY))
    assert await sender(new_only).send(closed(uid, 1)) == 1  # signed with the same secret
    assert [g["type"] for g in state["received"]] == ["position_opened", "position_closed"]
    # a sealed secret moved onto another row does not open there
    async with sessions() as s:
        row = (await s.execute(select(NotificationChannel))).scalar_one()
    row.address = "https://elsewhere.example/hook"
    with pytest.raises(Exception, match="does not decrypt"):
        WebhookSecrets(new_only).open(row)
    assert secret not in caplog.text


async def test_without_a_vault_no_webhook_is_added(sessions, hooks) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    site, _ = hooks
    world = await make_world(sessions)
    world.bot.services.safe_http = site.fetcher()
    ann = world.person("Ann", 1)
    await user_id(world, ann)
    r = await ann.say(f"/webhook {site.url}/hook")
    assert "no MAXXIT_MASTER_KEY" in text_of(r) and "whsec_" not in text_of(r)
    async with sessions() as s:
        assert (await s.execute(select(NotificationChannel))).first() is None


def test_the_migration_seals_plaintext_secrets(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "old.db"
    upgrade_sync(sqlite_url(path), "0015")
    db = sqlite3.connect(path)
    now = "2026-01-01 00:00:00"
    db.execute("insert into users (id, display_name, language, settings, created_at) "
               "values (7, 'u', 'en', '{}', ?)", (now,))  # fmt: skip
    db.execute("insert into notification_channels (id, user_id, kind, address, secret, failures, "
               "kinds, created_at) values (3, 7, 'webhook', 'https://hooks.example/x', "
               "'whsec_plain', 0, '{}', ?)", (now,))  # fmt: skip
    db.commit()
    db.close()
    monkeypatch.delenv("MAXXIT_MASTER_KEY", raising=False)
    with pytest.raises(RuntimeError, match="set MAXXIT_MASTER_KEY"):
        upgrade_sync(sqlite_url(path), "head")  # never silently left in plain text
    monkeypatch.setenv("MAXXIT_MASTER_KEY", NEW_KEY)
    upgrade_sync(sqlite_url(path), "head")
    db = sqlite3.connect(path)
    columns = [r[1] for r in db.execute("pragma table_info(notification_channels)")]
    query = "select secret_sealed, secret_key_id from notification_channels"
    sealed, key_id = db.execute(query).fetchone()
    db.close()
    assert "secret" not in columns and b"whsec_plain" not in sealed
    row = NotificationChannel(id=3, user_id=7, kind="webhook", address="https://hooks.example/x",
                              secret_sealed=sealed, secret_key_id=key_id)  # fmt: skip
    assert WebhookSecrets(Vault(MasterKey.parse(NEW_KEY))).open(row) == "whsec_plain"
