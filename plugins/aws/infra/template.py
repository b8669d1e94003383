"""serverless.yml read back in Python, its Serverless variables resolved for
one stage and region.

Why not ask the Serverless Framework for it: that needs Node and its packages,
which the sandbox and a console do not have. The template uses a small set of
variables (``${sls:stage}``, ``${opt:stage, 'dev'}``, ``${self:custom.…}``,
``${param:…}``, ``${aws:region}``), and this module resolves exactly those; a
variable it does not know is an error naming it and where it is, never a
value left half-resolved. CloudFormation's own intrinsics (``Ref``,
``Fn::GetAtt``, ``Fn::Join``) are left as they are: provision.py resolves
them once the resources exist.

Sections are resolved when asked for, so listing the resources does not need
the deploy-only parameters (the Lambda layer's ARN)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# the repository root holds serverless.yml (plugins/aws/infra/template.py → ../../..)
TEMPLATE_PATH = Path(__file__).resolve().parents[3] / "serverless.yml"

# innermost first: a variable's fallback may itself be a variable
_VARIABLE = re.compile(r"\$\{([^${}]+)\}")
_QUOTED = re.compile(r"""^(['"])(.*)\1$""")


class TemplateError(ValueError):
    """serverless.yml uses something this reader cannot resolve, or is not
    shaped as expected; the message names the variable and where it is."""


@dataclass(frozen=True, slots=True)
class Resource:
    logical_id: str
    type: str  # AWS::DynamoDB::Table, ...
    properties: dict[str, Any]  # Serverless variables resolved, CloudFormation intrinsics kept
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Function:
    name: str  # the key under `functions:` (api, telemetryConsumer, ...)
    handler: str  # plugins/aws/lambdas/api.handler
    role: str  # the logical id of its AWS::IAM::Role
    # provider-wide variables merged with the function's own; a value is a string,
    # or a CloudFormation intrinsic ({"Ref": "UserPool"}) resolved once deployed
    environment: dict[str, Any]
    events: tuple[dict[str, Any], ...] = ()

    @property
    def module(self) -> str:
        """The Python module Lambda imports (``plugins.aws.lambdas.api``)."""
        return self.handler.rpartition(".")[0].replace("/", ".")

    @property
    def attribute(self) -> str:
        """The callable Lambda invokes in :attr:`module` (``handler``)."""
        return self.handler.rpartition(".")[2]


@dataclass
class Template:
    """serverless.yml for one ``stage`` and ``region``; ``params`` override the
    file's `params.default` (as ``--param=name=value`` does)."""

    document: dict[str, Any]
    stage: str
    region: str
    params: dict[str, str] = field(default_factory=dict)
    path: Path = TEMPLATE_PATH

    @classmethod
    def load(cls, stage: str, region: str, *, path: Path = TEMPLATE_PATH,
             params: Mapping[str, str] | None = None) -> Template:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise TemplateError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(document, dict):
            raise TemplateError(f"{path}: expected a mapping at the top level")
        return cls(document, stage, region, dict(params or {}), path)

    # ------------------------------------------------------------ sections
    def section(self, *keys: str) -> Any:
        """The part of the document at ``keys`` with its variables resolved."""
        return self._resolve(self._raw(keys), ".".join(keys))

    @property
    def resources(self) -> dict[str, Resource]:
        """Every resource `resources.Resources` declares, by logical id, in the
        file's order (the resources Serverless adds for functions, API Gateway
        and log groups are not here: the sandbox runs the handlers itself)."""
        declared = self.section("resources", "Resources")
        found = {}
        for logical_id, body in declared.items():
            if not isinstance(body, dict) or "Type" not in body:
                raise TemplateError(f"{self.path}: resources.Resources.{logical_id} has no Type")
            depends = body.get("DependsOn", ())
            found[logical_id] = Resource(
                logical_id, str(body["Type"]), dict(body.get("Properties") or {}),
                (depends,) if isinstance(depends, str) else tuple(depends))
        return found

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == resource_type]

    @property
    def outputs(self) -> dict[str, Any]:
        """`resources.Outputs`: each output's ``Value`` (intrinsics kept)."""
        declared = self.section("resources", "Outputs") or {}
        return {name: body["Value"] for name, body in declared.items()}

    @property
    def functions(self) -> dict[str, Function]:
        provider_env = self.section("provider", "environment") or {}
        found = {}
        for name in self._raw(("functions",)):
            body = self.section("functions", name)
            env = {**provider_env, **(body.get("environment") or {})}
            found[name] = Function(
                name, str(body["handler"]), str(body.get("role", "")),
                {str(k): "" if v is None else v if isinstance(v, dict) else str(v)
                 for k, v in env.items()},
                tuple(body.get("events") or ()))
        return found

    # ------------------------------------------------------------ variables
    def _raw(self, keys: tuple[str, ...] | list[str]) -> Any:
        node: Any = self.document
        for i, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise TemplateError(f"{self.path}: {'.'.join(keys[:i + 1])} is not declared")
            node = node[key]
        return node

    def _resolve(self, node: Any, where: str, depth: int = 0) -> Any:
        if depth > 20:
            raise TemplateError(f"{self.path}: {where}: variables refer to each other in a loop")
        if isinstance(node, dict):
            return {k: self._resolve(v, f"{where}.{k}", depth) for k, v in node.items()}
        if isinstance(node, list):
            return [self._resolve(v, f"{where}[{i}]", depth) for i, v in enumerate(node)]
        if not isinstance(node, str) or "${" not in node:
            return node
        text = node
        while (match := _VARIABLE.search(text)) is not None:
            value = self._variable(match.group(1), where, depth)
            if match.group(0) == text:  # the whole string: keep the value's type (numbers)
                return self._resolve(value, where, depth + 1)
            text = text[:match.start()] + str(value) + text[match.end():]
        return text

    def _variable(self, expression: str, where: str, depth: int) -> Any:
        reference, _, fallback = (part.strip() for part in expression.partition(","))
        source, _, address = reference.partition(":")
        value: Any = None
        if source == "sls" and address == "stage":
            value = self.stage
        elif source == "opt" and address in ("stage", "region"):
            value = self.stage if address == "stage" else self.region
        elif source == "aws" and address == "region":
            value = self.region
        elif source == "param":
            defaults = self.document.get("params", {}).get("default", {}) or {}
            value = self.params.get(address, defaults.get(address))
        elif source == "self":
            value = self._resolve(self._raw(address.split(".")), address, depth + 1)
        else:
            raise TemplateError(f"{self.path}: {where}: unknown variable ${{{expression}}}")
        if value is None and fallback:
            quoted = _QUOTED.match(fallback)
            return quoted.group(2) if quoted else self._variable(fallback, where, depth)
        if value is None:
            raise TemplateError(f"{self.path}: {where}: ${{{expression}}} has no value "
                                f"(pass it as a parameter)")
        return value
