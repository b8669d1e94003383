"""``smartiot api serve|token``: the REST API on this machine.

``serve`` runs the same Lambda handlers API Gateway would call, behind a
small WSGI adapter, over the profile's backend (its store: commands and
shadows need a live hub and answer 404 here). ``token`` issues a signed bearer
token for a user and role; it stands in for per-person accounts, which are
not there yet, so whoever may run it may act as anyone.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from core.context import AppContext
from core.errors import SmartIotError
from core.model.roles import Role

if TYPE_CHECKING:
    from core.ports.idempotency import IdempotencyStore
    from plugins.api.auth import TokenSigner
    from plugins.api.wiring import ApiServices

# Powertools and pydantic take about a second to import: only `smartiot api`
# pays for them, never the window or another command building its parser.


def configure_api(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="api_action", metavar="ACTION", required=True)
    srv = sub.add_parser("serve", help="serve the REST API over the profile's backend")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    srv.add_argument("--port", type=int, default=3000, help="port (default 3000; 0: any free)")
    srv.add_argument("--rate-limit", type=int, default=600, metavar="N",
                     help="requests per minute per user (default 600)")
    srv.add_argument("--live", action="store_true",
                     help="also join the hub's broker as a console, so device commands and "
                     "shadows work (needs a team broker and a running `smartiot hub`)")
    tok = sub.add_parser("token", help="issue a bearer token for the local API")
    tok.add_argument("user")
    tok.add_argument("--role", required=True, choices=[r.value for r in Role])
    tok.add_argument("--org", default="", help="organization the token is limited to")
    tok.add_argument("--hours", type=float, default=12.0, help="lifetime (default 12)")


def token_signer(context: AppContext) -> TokenSigner:
    from plugins.api.auth import TokenSigner

    return TokenSigner.from_dir(context.config.data_dir / "api")


def api_services(context: AppContext) -> ApiServices:
    from core.crypto.keystore import CodeSigningKeys
    from core.store.preferences import SqlPreferenceStore
    from plugins.api.wiring import build_api_services

    backend = context.backend
    store = getattr(backend, "store", None)
    return build_api_services(
        backend, signing_keys=CodeSigningKeys(context.config.data_dir / "codesign"),
        preferences=SqlPreferenceStore(store.engine) if store is not None else None,
        rule_types=context.plugins.alert_rule_types())


def _go_live(context: AppContext) -> bool:
    """Act as one more console on the hub's broker (never a second hub, never a
    demo fleet), as `smartiot devices command` does."""
    config = context.config
    profile = config.profile
    if profile.backend == "local" and profile.broker == "embedded":
        print("smartiot api serve --live: the profile's broker is the console's embedded one, "
              "which only the console window reaches; pass the hub's broker "
              "(--broker mqtt://host:1883) or use a team profile", file=sys.stderr)
        return False
    context.config = dataclasses.replace(config, profiles={
        **config.profiles,
        config.profile_name: dataclasses.replace(profile, hub=False, demo_fleet=False)})
    context.live = True
    return True


def idempotency_store(context: AppContext) -> IdempotencyStore | None:
    """Where the API keeps Idempotency-Key answers: the backend's own (DynamoDB
    on AWS), else a table of the profile's SQL store."""
    backend = context.backend
    if backend.idempotency is not None:
        return backend.idempotency
    store = getattr(backend, "store", None)
    return getattr(store, "idempotency", None)


def run_api(args: argparse.Namespace, context: AppContext) -> int:
    from plugins.api.app import RateLimit, make_handler
    from plugins.api.auth_service import build_sign_in
    from plugins.api.wsgi import ApiWsgiApp, serve

    try:
        if args.api_action == "token":
            print(token_signer(context).issue(args.user, Role(args.role), args.org,
                                              hours=args.hours))
            return 0
        if args.rate_limit < 1:
            print("smartiot api serve: --rate-limit must be at least 1", file=sys.stderr)
            return 2
        if args.live and not _go_live(context):
            return 2
        services = api_services(context)
        tokens = token_signer(context)
        sign_in = build_sign_in(context.backend, tokens)
        idempotency = idempotency_store(context)
        app = ApiWsgiApp(make_handler(lambda: services, rate_limit=RateLimit(args.rate_limit),
                                      sign_in=lambda: sign_in,
                                      idempotency=lambda: idempotency), tokens)
        server = serve(app, args.host, args.port)
    except (SmartIotError, OSError) as exc:
        print(f"smartiot api {args.api_action}: {exc}", file=sys.stderr)
        return 1
    print(f"serving the REST API on http://{args.host}:{server.server_port} "
          f"(OpenAPI at /openapi.json); Ctrl+C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
