"""``smartiot aws subscriptions add|list|remove``: who gets alert e-mail.

Adding or removing a subscription decides who hears of alerts, as editing
an alert rule decides what raises one, so it takes the same permission
(``rule.edit``: engineers and admins), and both are written to the audit
trail, refusals too; anyone may list them. boto3 is imported only when the
command runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.context import AppContext
from core.errors import PermissionDenied, ValidationError
from core.model.roles import Permission
from core.services.access import authorize, record_action

SEVERITIES = ("info", "warning", "critical")


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="subscriptions_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="e-mail an organization's alerts to an address "
                                         "(adding it again changes it)")
    add.add_argument("organization", help="organization id, or '*' for every organization")
    add.add_argument("email")
    add.add_argument("--min-severity", choices=SEVERITIES, default="warning",
                     help="the least severe alert to send (default: warning); raised critical "
                          "alerts reach every subscriber whatever this says")
    events = add.add_mutually_exclusive_group()
    events.add_argument("--raised-only", action="store_true", help="not when alerts resolve")
    events.add_argument("--resolved-only", action="store_true",
                        help="only when alerts resolve (critical alerts are still sent)")
    listing = actions.add_parser("list", help="an organization's subscriptions")
    listing.add_argument("organization", help="organization id, or '*' for the fleet-wide ones")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    remove = actions.add_parser("remove", help="stop e-mailing an organization's alerts "
                                               "to an address")
    remove.add_argument("organization")
    remove.add_argument("email")


def run(args: argparse.Namespace, context: AppContext) -> int:
    profile = context.config.profile
    if profile.backend != "aws":
        print(f"profile {context.config.profile_name!r} uses the {profile.backend!r} backend; "
              "alert e-mail subscriptions live on AWS: choose an aws profile (--profile aws-...)",
              file=sys.stderr)
        return 2
    actor = context.actor
    from botocore.exceptions import BotoCoreError, ClientError

    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.notifications.subscriptions import (
        TABLE_ROLE,
        Subscription,
        SubscriptionStore,
        check_organization,
        normalize_email,
    )
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings.from_profile(profile)
    table = settings.table(TABLE_ROLE)
    action = args.subscriptions_action
    try:
        backend = build_aws_backend_for(settings)
        store = SubscriptionStore(backend.clients.dynamodb, table, settings.page_size)
        if action == "list":
            rows = list(store.of_organization(args.organization))
        else:
            organization = check_organization(args.organization)
            email = normalize_email(args.email)
            subject = f"{organization}/{email}"
            audit_action = ("notification.subscribe" if action == "add"
                            else "notification.unsubscribe")
            authorize(backend.audit, actor, Permission.RULE_EDIT, audit_action, subject)
            if action == "add":
                saved = store.put(Subscription(
                    organization, email, min_severity=args.min_severity,
                    on_raised=not args.resolved_only, on_resolved=not args.raised_only,
                    created_by=actor.user))
                record_action(backend.audit, actor, audit_action, subject, {
                    "min_severity": saved.min_severity.value, "on_raised": saved.on_raised,
                    "on_resolved": saved.on_resolved})
                print(f"{saved.email} gets {_describe(saved)} of organization "
                      f"{saved.organization_id}")
                return 0
            if store.remove(organization, email):
                record_action(backend.audit, actor, audit_action, subject)
                print(f"{email} no longer gets alerts of organization {organization}")
                return 0
            print(f"{email} was not subscribed to organization {organization}",
                  file=sys.stderr)
            return 1
    except PermissionDenied as exc:
        print(f"{exc} (who gets alert e-mail is part of the alerting set-up)", file=sys.stderr)
        return 3
    except ValidationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"could not reach the subscriptions table {table}: {exc} "
              "(`smartiot aws tables` creates it)", file=sys.stderr)
        return 1
    for s in rows:
        if args.json:
            print(json.dumps(_as_json(s)))
        else:
            print(f"{s.email}\t{_describe(s)}\tadded by {s.created_by or '?'}")
    if not rows and not args.json:
        print(f"no one gets alert e-mail for organization {args.organization}", file=sys.stderr)
    return 0


def _describe(s: Any) -> str:
    if s.on_raised and s.on_resolved:
        events = "raised and resolved"
    else:
        events = "raised" if s.on_raised else "resolved (and raised critical)"
    return f"{events} alerts of severity {s.min_severity.value} and above"


def _as_json(s: Any) -> dict[str, Any]:
    return {"organization_id": s.organization_id, "email": s.email,
            "min_severity": s.min_severity.value, "on_raised": s.on_raised,
            "on_resolved": s.on_resolved, "created_by": s.created_by,
            "created_at": s.created_at.isoformat() if s.created_at else None}
