"""Defaults for a Context from its environment, as spark-submit hands them to SparkConf.

``sparklet submit script.py --master local[4] --name etl --conf task.maxFailures=8`` runs
the script with these environment variables set, and a ``Context()`` created without a
master, an application name or a key picks them up (values given in code win, as in
Spark, where a SparkConf set in code overrides spark-submit's flags):

=====================  =========================================================
``SPARKLET_MASTER``    the master (``local[4]``, ``inproc[2]``, ...)
``SPARKLET_APP_NAME``  the application name
``SPARKLET_CONF``      a JSON object of configuration keys and values
=====================  =========================================================

They work without ``sparklet submit`` too: ``SPARKLET_MASTER=inproc[2] python job.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

__all__ = ["SubmitDefaults", "submitted_defaults", "submit_environment",
           "MASTER_VARIABLE", "APP_NAME_VARIABLE", "CONF_VARIABLE"]

MASTER_VARIABLE = "SPARKLET_MASTER"
APP_NAME_VARIABLE = "SPARKLET_APP_NAME"
CONF_VARIABLE = "SPARKLET_CONF"


@dataclasses.dataclass(frozen=True)
class SubmitDefaults:
    master: str | None = None
    app_name: str | None = None
    conf: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def submitted_defaults(environ: Mapping[str, str] | None = None) -> SubmitDefaults:
    """The defaults in the environment (``os.environ`` unless given); a malformed
    ``SPARKLET_CONF`` is refused, naming the variable."""
    env = os.environ if environ is None else environ
    conf: dict[str, Any] = {}
    raw = env.get(CONF_VARIABLE)
    if raw:
        try:
            conf = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{CONF_VARIABLE} must be a JSON object of configuration keys, got {raw!r}: {exc}") from None
        if not isinstance(conf, dict):
            raise ValueError(f"{CONF_VARIABLE} must be a JSON object of configuration keys, got {raw!r}")
    return SubmitDefaults(env.get(MASTER_VARIABLE) or None, env.get(APP_NAME_VARIABLE) or None, conf)


def submit_environment(master: str | None, app_name: str | None, conf: Mapping[str, Any]) -> dict[str, str]:
    """The environment variables that make a child's ``Context()`` use these defaults."""
    env = {}
    if master is not None:
        env[MASTER_VARIABLE] = master
    if app_name is not None:
        env[APP_NAME_VARIABLE] = app_name
    if conf:
        env[CONF_VARIABLE] = json.dumps(dict(conf))
    return env
