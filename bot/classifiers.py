"""Which classifier runs: the rules, or an OpenAI-compatible model with the rules as its
fallback when OPENAI_API_KEY (or OPENAI_BASE_URL, for a local model) is set."""

from __future__ import annotations

from bot.settings import Settings
from engine.classify.base import Classifier
from engine.classify.catalog import MarketCatalog
from engine.classify.llm import LLMClassifier


def llm_classifier(settings: Settings, fallback: Classifier) -> LLMClassifier | None:
    if not settings.openai_api_key and not settings.openai_base_url:
        return None
    from openai import AsyncOpenAI  # imported only when an LLM is configured

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "local"
    client = AsyncOpenAI(
        api_key=key,
        base_url=settings.openai_base_url or None,
        timeout=settings.llm_timeout_seconds,
        max_retries=1,
    )
    # the rules' catalog when they have one: both read the same venue listings
    markets = getattr(fallback, "catalog", None) or MarketCatalog()
    return LLMClassifier(
        client,
        settings.llm_model,
        fallback,
        markets,
        timeout=settings.llm_timeout_seconds,
        concurrency=settings.llm_concurrency,
    )


def build_classifier(settings: Settings, rules: Classifier) -> Classifier:
    return llm_classifier(settings, rules) or rules
