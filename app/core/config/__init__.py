"""The tray's configuration, typed, in layers: defaults, IT's system files, the user's file,
then the environment (:mod:`.layers`). One idea per module:

- :mod:`.schema`: the settings as typed, immutable values (:class:`Config` and its sections);
- :mod:`.paths`: where the files are (:class:`Paths`, the system layers);
- :mod:`.values`: each setting by dotted key, its parser, range and check;
- :mod:`.files`: one layer's file read with care, the user's file written;
- :mod:`.layers`: the layers and locks, :func:`load` and :func:`save_user`.

Tokens never live here: only the keyring holds them.
"""

from __future__ import annotations

from app.core.config.files import MAX_FILE_BYTES, MAX_NESTING, dumps
from app.core.config.layers import LOCKED_KEY, from_dict, load, save_user, to_dict
from app.core.config.paths import HOME_VARIABLE, SYSTEM_CONFIG_VARIABLE, Paths, system_config_files
from app.core.config.schema import (
    AUTH_STYLES,
    BEARERS,
    BODY_FORMATS,
    ENVIRONMENT,
    LOG_LEVELS,
    PAC_AUTO,
    PROXY_MODES,
    AuthProfile,
    Config,
    Endpoints,
    NetworkSettings,
    OkTest,
    PayloadProfile,
    QuietHours,
    StreamSettings,
)
from app.core.config.values import RANGES, setting_keys
from app.core.errors import ConfigError, UnsafeConfigFile  # their home is the error tree

__all__ = [
    "AUTH_STYLES",
    "BEARERS",
    "BODY_FORMATS",
    "ENVIRONMENT",
    "HOME_VARIABLE",
    "LOCKED_KEY",
    "LOG_LEVELS",
    "MAX_FILE_BYTES",
    "MAX_NESTING",
    "PAC_AUTO",
    "PROXY_MODES",
    "RANGES",
    "SYSTEM_CONFIG_VARIABLE",
    "AuthProfile",
    "Config",
    "ConfigError",
    "Endpoints",
    "NetworkSettings",
    "OkTest",
    "Paths",
    "PayloadProfile",
    "QuietHours",
    "StreamSettings",
    "UnsafeConfigFile",
    "dumps",
    "from_dict",
    "load",
    "save_user",
    "setting_keys",
    "system_config_files",
    "to_dict",
]
