"""The AutoBot configuration schema.

One table, ``LEAVES``, describes every setting: its dotted path, type, default,
range or choices, what kind of value it is (URL, file path, secret) and the
seed's environment variable name where it has one. Everything else is derived
from it: the voluptuous schema that checks structure, types and ranges, the
defaults layer, the environment-variable map and docs/environment.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import voluptuous as vol

LeafType = Literal["str", "int", "float", "bool", "list", "url", "url_list", "path", "choice"]
PathKind = Literal["file", "dir"]

REQUIRED_SECTIONS: tuple[str, ...] = ("backend", "memory", "ui", "chat", "logging")

# Sections that are free-form mappings: their keys are the user's, not the schema's.
FREEFORM_SECTIONS: tuple[str, ...] = ("prompts",)

# Sections that belong to the running service and never to the base file:
# sync-to-base leaves them out of config.yaml.
NEVER_IN_BASE: tuple[str, ...] = ("prompts",)

URL_SCHEMES: tuple[str, ...] = ("http", "https", "ws", "wss", "redis", "rediss")


@dataclass(frozen=True, slots=True)
class Leaf:
    """One setting of the schema."""

    path: str
    type: LeafType
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    path_kind: PathKind | None = None
    env: str | None = None
    help: str = ""

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def has_default(self) -> bool:
        return self.default is not None

    def type_name(self) -> str:
        if self.type == "choice":
            return "one of " + "|".join(self.choices)
        return {"url_list": "list of URLs", "list": "list of strings"}.get(self.type, self.type)


def _leaf(path: str, type_: LeafType, default: Any = None, *, env: str | None = None,
          minimum: float | None = None, maximum: float | None = None,
          choices: tuple[str, ...] = (), path_kind: PathKind | None = None,
          help: str = "") -> Leaf:
    if type_ == "path" and path_kind is None:
        path_kind = "file"
    return Leaf(path, type_, default, minimum, maximum, choices, path_kind, env, help)


LEAVES: tuple[Leaf, ...] = (
    # backend
    _leaf("backend.server_host", "str", "0.0.0.0", env="AUTOBOT_BACKEND_HOST",
          help="address the backend listens on"),
    _leaf("backend.server_port", "int", 8001, env="AUTOBOT_BACKEND_PORT", minimum=1,
          maximum=65535, help="port the backend listens on"),
    _leaf("backend.timeout", "int", 60, env="AUTOBOT_BACKEND_TIMEOUT", minimum=1, maximum=300,
          help="request timeout in seconds"),
    _leaf("backend.streaming", "bool", True, env="AUTOBOT_STREAMING",
          help="stream responses as they are generated"),
    _leaf("backend.max_workers", "int", 4, env="AUTOBOT_BACKEND_WORKERS", minimum=1, maximum=64,
          help="worker processes"),
    _leaf("backend.cors_origins", "url_list", ["http://localhost:5173"],
          env="AUTOBOT_CORS_ORIGINS", help="origins the browser GUI may call from"),
    _leaf("backend.api_key", "str", env="AUTOBOT_API_KEY", help="key clients present"),
    _leaf("backend.llm.provider", "choice", "ollama", env="AUTOBOT_LLM_PROVIDER",
          choices=("ollama", "openai", "anthropic"), help="which LLM backend answers"),
    _leaf("backend.llm.temperature", "float", 0.7, env="AUTOBOT_LLM_TEMPERATURE", minimum=0.0,
          maximum=2.0, help="sampling temperature"),
    _leaf("backend.llm.max_tokens", "int", 4096, env="AUTOBOT_LLM_MAX_TOKENS", minimum=1,
          maximum=200_000, help="largest answer in tokens"),
    _leaf("backend.llm.ollama.host", "url", "http://127.0.0.1:11434", env="AUTOBOT_OLLAMA_HOST",
          help="Ollama server URL"),
    _leaf("backend.llm.ollama.models", "list", ["llama3.2"], env="AUTOBOT_OLLAMA_MODELS",
          help="models offered in the GUI"),
    _leaf("backend.llm.ollama.default_model", "str", "llama3.2", env="AUTOBOT_DEFAULT_MODEL",
          help="model used when none is chosen"),
    _leaf("backend.llm.openai.base_url", "url", "https://api.openai.com/v1",
          env="AUTOBOT_OPENAI_BASE_URL", help="OpenAI-compatible endpoint"),
    _leaf("backend.llm.openai.api_key", "str", env="AUTOBOT_OPENAI_API_KEY",
          help="OpenAI API key"),
    # memory
    _leaf("memory.redis.enabled", "bool", True, env="AUTOBOT_REDIS_ENABLED",
          help="use Redis for conversation memory"),
    _leaf("memory.redis.host", "str", "127.0.0.1", env="AUTOBOT_REDIS_HOST", help="Redis host"),
    _leaf("memory.redis.port", "int", 6379, env="AUTOBOT_REDIS_PORT", minimum=1, maximum=65535,
          help="Redis port"),
    _leaf("memory.redis.db", "int", 0, env="AUTOBOT_REDIS_DB", minimum=0, maximum=15,
          help="Redis database number"),
    _leaf("memory.redis.password", "str", env="AUTOBOT_REDIS_PASSWORD", help="Redis password"),
    _leaf("memory.vector_store.path", "path", "data/chromadb", env="AUTOBOT_VECTOR_STORE_PATH",
          path_kind="dir", help="directory of the vector store"),
    _leaf("memory.vector_store.collection", "str", "autobot", env="AUTOBOT_VECTOR_COLLECTION",
          help="vector store collection"),
    _leaf("memory.long_term.enabled", "bool", True, env="AUTOBOT_LONG_TERM_MEMORY",
          help="keep long-term memory"),
    _leaf("memory.long_term.retention_days", "int", 90, env="AUTOBOT_MEMORY_RETENTION_DAYS",
          minimum=1, maximum=3650, help="days long-term memory is kept"),
    # ui
    _leaf("ui.theme", "choice", "auto", env="AUTOBOT_UI_THEME", choices=("light", "dark", "auto"),
          help="GUI colour theme"),
    _leaf("ui.language", "str", "en", env="AUTOBOT_UI_LANGUAGE", help="GUI language"),
    _leaf("ui.developer_mode", "bool", False, env="AUTOBOT_DEVELOPER_MODE",
          help="show developer panels in the GUI"),
    _leaf("ui.font_size", "int", 14, env="AUTOBOT_UI_FONT_SIZE", minimum=8, maximum=48,
          help="GUI font size in points"),
    _leaf("ui.animations", "bool", True, help="GUI animations"),
    # chat
    _leaf("chat.max_messages", "int", 100, env="AUTOBOT_CHAT_MAX_MESSAGES", minimum=10,
          maximum=10_000, help="messages kept per conversation"),
    _leaf("chat.auto_scroll", "bool", True, help="scroll to the newest message"),
    _leaf("chat.history_file", "path", "data/chat_history.json", env="AUTOBOT_CHAT_HISTORY_FILE",
          help="file the chat history is saved to"),
    _leaf("chat.default_prompt", "str", "default", help="prompt used for a new chat"),
    # logging
    _leaf("logging.level", "choice", "INFO", env="AUTOBOT_LOG_LEVEL",
          choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), help="log level"),
    _leaf("logging.file", "path", "logs/autobot.log", env="AUTOBOT_LOG_FILE",
          help="log file"),
    _leaf("logging.max_size_mb", "int", 10, env="AUTOBOT_LOG_MAX_SIZE_MB", minimum=1,
          maximum=1024, help="size at which the log rotates, in MiB"),
    _leaf("logging.backup_count", "int", 5, env="AUTOBOT_LOG_BACKUP_COUNT", minimum=0,
          maximum=100, help="rotated logs kept"),
    _leaf("logging.format", "str", "%(asctime)s %(levelname)s %(name)s %(message)s",
          help="log line format"),
    # security
    _leaf("security.enable_encryption", "bool", False, env="AUTOBOT_ENABLE_ENCRYPTION",
          help="encrypt stored conversations"),
    _leaf("security.session_timeout_minutes", "int", 30, env="AUTOBOT_SESSION_TIMEOUT",
          minimum=5, maximum=1440, help="idle minutes before a session ends"),
    _leaf("security.jwt_secret", "str", env="AUTOBOT_JWT_SECRET", help="secret signing sessions"),
    _leaf("security.allowed_hosts", "list", ["localhost", "127.0.0.1"],
          env="AUTOBOT_ALLOWED_HOSTS", help="host names the backend answers to"),
    _leaf("security.rate_limit_per_minute", "int", 60, env="AUTOBOT_RATE_LIMIT", minimum=1,
          maximum=10_000, help="requests per minute per client"),
    # knowledge_base
    _leaf("knowledge_base.enabled", "bool", True, env="AUTOBOT_KB_ENABLED",
          help="use the knowledge base"),
    _leaf("knowledge_base.update_frequency_days", "int", 7, env="AUTOBOT_KB_UPDATE_FREQUENCY",
          minimum=1, maximum=365, help="days between knowledge base refreshes"),
    _leaf("knowledge_base.path", "path", "data/knowledge_base", env="AUTOBOT_KB_PATH",
          path_kind="dir", help="directory of the knowledge base"),
    _leaf("knowledge_base.embedding_model", "str", "nomic-embed-text",
          env="AUTOBOT_KB_EMBEDDING_MODEL", help="embedding model"),
    _leaf("knowledge_base.chunk_size", "int", 1000, env="AUTOBOT_KB_CHUNK_SIZE", minimum=100,
          maximum=10_000, help="characters per indexed chunk"),
    # developer
    _leaf("developer.enabled", "bool", False, env="AUTOBOT_DEVELOPER_ENABLED",
          help="developer features"),
    _leaf("developer.debug_logging", "bool", False, env="AUTOBOT_DEBUG_LOGGING",
          help="log at DEBUG for developers"),
    _leaf("developer.profiling", "bool", False, help="profile requests"),
    # voice_interface
    _leaf("voice_interface.enabled", "bool", False, env="AUTOBOT_VOICE_ENABLED",
          help="voice input and output"),
    _leaf("voice_interface.speech_rate", "int", 175, env="AUTOBOT_VOICE_RATE", minimum=50,
          maximum=400, help="speech rate in words per minute"),
    _leaf("voice_interface.voice", "str", "default", env="AUTOBOT_VOICE_NAME",
          help="voice name"),
    _leaf("voice_interface.volume", "float", 0.8, env="AUTOBOT_VOICE_VOLUME", minimum=0.0,
          maximum=1.0, help="volume from 0 to 1"),
)

LEAVES_BY_PATH: dict[str, Leaf] = {leaf.path: leaf for leaf in LEAVES}

# Deployment switches of the seed: read by the agent, not configuration keys.
DEPLOYMENT_SWITCHES: tuple[str, ...] = (
    "AUTOBOT_CONFIG_AUTO_RELOAD",
    "AUTOBOT_CONFIG_VALIDATION_ON_STARTUP",
    "AUTOBOT_CONFIG_DISTRIBUTED_RELOAD",
)


def section_names() -> list[str]:
    """Every top-level section the schema knows, in table order."""
    names = dict.fromkeys(leaf.section for leaf in LEAVES)
    names.update(dict.fromkeys(FREEFORM_SECTIONS))
    return list(names)


def children_of(prefix: str) -> list[str]:
    """The keys the schema knows directly under a dotted mapping path ('' for the top)."""
    depth = len(prefix.split(".")) if prefix else 0
    names: dict[str, None] = {}
    for leaf in LEAVES:
        parts = leaf.path.split(".")
        if prefix and ".".join(parts[:depth]) != prefix:
            continue
        if len(parts) > depth:
            names[parts[depth]] = None
    if not prefix:
        names.update(dict.fromkeys(FREEFORM_SECTIONS))
    return list(names)


def defaults_tree() -> dict[str, Any]:
    """The defaults layer: every leaf that has a default, nested."""
    tree: dict[str, Any] = {}
    for leaf in LEAVES:
        if not leaf.has_default:
            continue
        node = tree
        *parents, last = leaf.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        # A copy: callers may change the tree, and must not change the schema's defaults.
        node[last] = copy.deepcopy(leaf.default)
    return tree


# --- the voluptuous schema ----------------------------------------------------------


def _strict_type(python_type: type, name: str) -> Callable[[Any], Any]:
    """A type check that, unlike isinstance, refuses bool where a number is expected."""

    def check(value: Any) -> Any:
        accepted = isinstance(value, python_type) and not (
            isinstance(value, bool) and python_type is not bool
        )
        if python_type is float and isinstance(value, int) and not isinstance(value, bool):
            accepted = True
        if not accepted:
            raise vol.TypeInvalid(f"expected {name}, got {type(value).__name__}")
        return value

    return check


def _string_list(value: Any) -> Any:
    if not isinstance(value, list):
        raise vol.TypeInvalid(f"expected a list, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str):
            raise vol.TypeInvalid(f"expected a list of strings, found {type(item).__name__}")
    return value


def leaf_type_validator(leaf: Leaf) -> Callable[[Any], Any]:
    """The check of a leaf's type alone (ranges are checked only once the type is right)."""
    if leaf.type in ("int",):
        return _strict_type(int, "an integer")
    if leaf.type == "float":
        return _strict_type(float, "a number")
    if leaf.type == "bool":
        return _strict_type(bool, "true or false")
    if leaf.type in ("list", "url_list"):
        return _string_list
    return _strict_type(str, "a string")


def leaf_value_validator(leaf: Leaf) -> Callable[[Any], Any]:
    """The checks on a value of the right type: range, choices."""
    checks: list[Callable[[Any], Any]] = []
    if leaf.minimum is not None or leaf.maximum is not None:
        checks.append(vol.Range(min=leaf.minimum, max=leaf.maximum))
    if leaf.choices:
        checks.append(vol.In(leaf.choices, msg=f"must be one of {', '.join(leaf.choices)}"))
    return vol.All(*checks) if checks else (lambda value: value)


@cache
def structure_schema() -> vol.Schema:
    """The voluptuous schema of the whole tree: sections, keys and leaf types.

    Ranges, URLs and paths are checked separately, after the type passed, so that a
    value of the wrong type gives one clear type finding rather than a crash.
    """
    tree: dict[Any, Any] = {}
    for leaf in LEAVES:
        node = tree
        *parents, last = leaf.path.split(".")
        for part in parents:
            node = node.setdefault(vol.Optional(part), {})
        node[vol.Optional(last)] = vol.Any(None, leaf_type_validator(leaf)) \
            if not leaf.has_default else leaf_type_validator(leaf)
    for section in FREEFORM_SECTIONS:
        tree[vol.Optional(section)] = dict
    return vol.Schema(tree, extra=vol.PREVENT_EXTRA)
