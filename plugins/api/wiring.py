"""What the REST handlers call, over a backend: the same services the console
and the CLI get (core.services.wiring.build_services), so a refusal, an
organization's scope and an audit entry are the same through every front end.

Handlers never reach a port: they call these use cases with the caller's
Actor (each checks the role and writes the audit entry). The API trusts only
the team's list of code-signing keys (``trust_key_files`` stays off): a key
file on the server is not trusted by fiat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from core.crypto.keystore import CodeSigningKeys
from core.ports.backend import Backend
from core.ports.preferences import PreferenceStore
from core.registrations import AlertRuleTypeSpec
from core.services.users import UserService
from core.services.wiring import Services, build_services

ApiServices = Services


def build_api_services(backend: Backend, *, signing_keys: CodeSigningKeys | None = None,
                       preferences: PreferenceStore | None = None,
                       rule_types: Mapping[str, AlertRuleTypeSpec] | None = None
                       ) -> Services:
    services = build_services(backend, signing_keys=signing_keys, rule_types=rule_types)
    if preferences is not None and backend.preferences is None:
        # A backend built before it carried the preference store (tests, the CLI's
        # `api serve` over a store): the API still keeps each person's settings.
        services = replace(services, users=UserService(
            preferences, backend.audit, directory=backend.users, accounts=backend.accounts,
            broker_accounts=backend.broker_accounts))
    return services
