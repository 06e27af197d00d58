"""Remediation command templates filled with a cluster's values, each marked as reading or changing."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from typing import Any

from posture.catalog.controls import CHANGES, READS, Command, needs

PLACEHOLDER_RE = re.compile(r"\{(name|resource_group|subscription_id|location|id|scope_id)\}")
SCOPE_ID_PLACEHOLDER = needs("PRIVATE_LINK_SCOPE_ID")
# The analyst's own values in the command templates: "${VNET:?set VNET}".
NEEDED_RE = re.compile(r"\$\{([A-Z][A-Z0-9_]*):\?")
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f]")
# What running a command does, said in the comment above it.
EFFECT_LABELS = {READS: "Only reads, changes nothing", CHANGES: "Changes Azure resources"}
EFFECT_COMMENTS = {effect: f"# {label}:" for effect, label in EFFECT_LABELS.items()}


def fill_command(template: str, values: dict[str, Any]) -> str:
    """A remediation command template with the cluster's values, shell-quoted.

    Values come from Azure and are hostile: a cluster named `x; rm -rf ~` must stay one argument
    when an analyst pastes the command. Only the documented placeholders are replaced; other
    braces (JMESPath queries in --query) are left alone.
    """

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        raw = values.get(key)
        if key == "scope_id" and not raw:
            return SCOPE_ID_PLACEHOLDER
        return shlex.quote(str(raw if raw is not None else ""))

    return PLACEHOLDER_RE.sub(value, template)


def commented_commands(commands: Iterable[Command], values: dict[str, Any]) -> list[str]:
    """The filled commands as lines to show, each after the comment saying what it does."""
    return [line for command in commands for line in (EFFECT_COMMENTS[command.effect], fill_command(command.template, values))]


def needed_variables(templates: Iterable[str]) -> list[str]:
    """The shell variables the analyst must set before running these commands, in order.

    `{scope_id}` counts too: a cluster in no Private Link scope yet gets the analyst's scope, and
    the script checks every value before its first command, not half-way through the clusters."""
    templates = list(templates)
    if any("{scope_id}" in template for template in templates):
        templates.append(SCOPE_ID_PLACEHOLDER)
    return list(dict.fromkeys(name for template in templates for name in NEEDED_RE.findall(template)))


def comment_safe(text: str) -> str:
    """Text for a shell comment: no newline may end the comment early."""
    return CONTROL_CHARS_RE.sub("?", text)


def cluster_values(cluster: Any, scope_id: str | None = None) -> dict[str, Any]:
    """The remediation template values of a cluster; `scope_id` when its facts are not loaded."""
    if scope_id is None and "facts" in cluster.__dict__ and isinstance(cluster.facts, dict):
        scope_id = cluster.facts.get("private_link_scope_id")
    return {
        "name": cluster.name,
        "resource_group": cluster.resource_group,
        "subscription_id": cluster.subscription_id,
        "location": cluster.location,
        "id": cluster.arm_id,
        "scope_id": scope_id,
    }
