"""The remediation script of a control: a POSIX sh script with the commands for every failing
cluster, each Azure value shell-quoted and each command marked as reading or changing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.utils import timezone

from posture.catalog.controls import CHANGES, READS, Command, Control
from posture.catalog.policies import POLICIES, PolicyDefinition
from posture.remediation.commands import EFFECT_COMMENTS, EFFECT_LABELS, comment_safe, fill_command, needed_variables

# The download streams; this only bounds a runaway export (the largest supported fleet is 100,000).
MAX_SCRIPT_CLUSTERS = 100_000
NO_COMMAND = "# No command: see the portal steps on the control page."


def control_policies(control: Control) -> list[PolicyDefinition]:
    return [POLICIES[guid] for guid in control.remediation.policies if guid in POLICIES]


def what_the_commands_do(commands: tuple[Command, ...]) -> str:
    """The header line saying whether running the script changes anything."""
    changing = sum(command.effect == CHANGES for command in commands)
    if not commands:
        return "There is no command for this control: follow the portal steps on the control page."
    if not changing:
        what = "Every command only reads, to show what needs fixing: running this script changes nothing."
    elif changing == len(commands):
        what = "Review before running: every command changes Azure resources."
    else:
        changed, read = EFFECT_LABELS[CHANGES], EFFECT_LABELS[READS]
        what = f'Review before running: commands marked "{changed}" change them; those marked "{read}" do not.'
    return what + " Values are shell-quoted."


def remediation_script(control: Control, targets: Iterable[dict[str, Any]], scope_label: str) -> Iterator[str]:
    """A POSIX sh script fixing `targets` (cluster_values rows); every Azure value is quoted."""
    commands = control.remediation.commands
    yield "#!/bin/sh\n"
    yield f"# Arc Posture remediation for {control.id}: {comment_safe(control.title)}\n"
    yield f"# Scope: {comment_safe(scope_label)}. Generated {timezone.now():%Y-%m-%d %H:%M} UTC.\n"
    yield f"# {comment_safe(control.remediation.summary)}\n"
    yield f"# {what_the_commands_do(commands)}\n"
    yield "set -eu\n\n"
    needed = needed_variables(control.remediation.az)
    if needed:
        # Checked up front, so a missing value stops the script before it changes anything.
        yield f"# Set these to your own values first: {' '.join(needed)}\n"
        yield "".join(f': "${{{name}:?set {name}}}"\n' for name in needed) + "\n"
    subscriptions: list[str] = []
    seen: set[str] = set()  # subscription-wide commands repeat across clusters: write them once
    count = 0
    for values in targets:
        if count >= MAX_SCRIPT_CLUSTERS:
            yield f"# Stopped after {MAX_SCRIPT_CLUSTERS} clusters.\n"
            break
        count += 1
        if not subscriptions or subscriptions[-1] != values["subscription_id"]:
            subscriptions.append(values["subscription_id"])
        yield f"# {comment_safe(values['name'])} ({comment_safe(values['id'])})\n"
        yield from _cluster_commands(commands, values, seen)
        yield "\n"
    yield f"# {count} failing cluster(s).\n"
    yield from _policy_assignments(control, subscriptions)


def _cluster_commands(commands: tuple[Command, ...], values: dict[str, Any], seen: set[str]) -> Iterator[str]:
    if not commands and NO_COMMAND not in seen:
        seen.add(NO_COMMAND)
        yield NO_COMMAND + "\n"
    for command in commands:
        filled = fill_command(command.template, values)
        if filled not in seen:
            seen.add(filled)
            yield f"{EFFECT_COMMENTS[command.effect]}\n{filled}\n"


def _policy_assignments(control: Control, subscriptions: list[str]) -> Iterator[str]:
    policies = control_policies(control)
    if not (policies and subscriptions):
        return
    yield "\n# Or fix them fleet-wide with Azure Policy: assign each built-in at the subscriptions (or a management group).\n"
    yield "# These assignments change Azure resources; they are commented out.\n"
    for policy in policies:
        yield f"# {comment_safe(policy.display_name)} ({policy.effect})\n"
        for sub in subscriptions:
            name = f"arcposture-{control.id.lower()}-{policy.guid[:8]}"
            yield f"# az policy assignment create --name {name} --policy {policy.guid} --scope /subscriptions/{comment_safe(sub)}\n"
