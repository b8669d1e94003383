"""Which AWS operations a Lambda function's code can make, read from its
source: the modules its handler imports (at the top or inside functions),
followed through ``core`` and ``plugins``, and in them every method call
whose name is an operation of a service those modules open a client for
(``clients.client("iot")``, ``clients.dynamodb``).

Why from the source and not from a run: a run covers the paths a test
happens to take; the role must cover every call the code can make, including
the error paths. The reading over-approximates (a method named like an
operation counts), which errs on the side of a role that is checked for more,
never less."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("core", "plugins")

# botocore's service names → IAM's action prefix
IAM_PREFIX = {"dynamodb": "dynamodb", "s3": "s3", "iot": "iot", "iot-data": "iot",
              "iot-jobs-data": "iotjobsdata", "kinesis": "kinesis", "sqs": "sqs", "ses": "ses",
              "sesv2": "ses", "cognito-idp": "cognito-idp",
              "cognito-identity": "cognito-identity", "timestream-write": "timestream",
              "timestream-query": "timestream", "sts": "sts"}

# operations whose IAM action has another name (the Service Authorization Reference)
IAM_ACTION = {
    ("s3", "ListObjectsV2"): "ListBucket", ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "CreateMultipartUpload"): "PutObject", ("s3", "UploadPart"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "ListParts"): "ListMultipartUploadParts",
    ("s3", "ListMultipartUploads"): "ListBucketMultipartUploads",
    # a transaction is authorized item by item; the stores' transactions put items
    ("dynamodb", "TransactWriteItems"): "PutItem",
    ("dynamodb", "TransactGetItems"): "GetItem",
}

# operations no IAM policy governs: STS tells anyone who they are; Cognito's
# GetUser is authorized by the caller's own access token
NO_PERMISSION = {("sts", "GetCallerIdentity"), ("cognito-idp", "GetUser")}

# Permissions a call needs beyond its own action: CreateJob hands IoT Jobs the
# role it presigns firmware URLs with (presignedUrlConfig), which takes
# iam:PassRole on that role.
IMPLIED = {"iot:CreateJob": {"iam:PassRole"}}

# Functions that create a stage's resources for the sandbox and the tests; a
# deployed function never calls them (CloudFormation creates what they make).
SETUP_FUNCTIONS = frozenset({"create_tables", "create_bucket", "create_user_pool",
                             "add_user_with_password", "create_queue"})


def module_path(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def closure(start: str, exclude: Iterable[str] = ()) -> set[str]:
    """``start`` and every core/plugins module it imports, transitively
    (package ``__init__`` modules of each import included)."""
    excluded = tuple(exclude)
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        if module in seen or module.startswith(excluded):
            continue
        path = module_path(module)
        if path is None or module.split(".")[0] not in PACKAGES:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        todo.extend(_imports(tree, module, path.name == "__init__.py"))
    return seen


def _services_and_methods(module: str) -> tuple[set[str], set[str]]:
    path = module_path(module)
    assert path is not None
    tree = ast.parse(path.read_text(encoding="utf-8"))
    services: set[str] = set()
    methods: set[str] = set()
    for node in _walk_skipping_setup(tree):
        if isinstance(node, ast.Attribute):
            # calls, and methods handed on to be called (a pager's fetch function)
            methods.add(node.attr)
            if node.attr == "dynamodb":
                services.add("dynamodb")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            if node.func.attr == "client":
                services.add(node.args[0].value)
            elif node.func.attr == "get_paginator":
                methods.add(node.args[0].value)
    return services, methods


def _walk_skipping_setup(tree: ast.AST) -> Iterable[ast.AST]:
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef) and node.name in SETUP_FUNCTIONS:
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


@functools.cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name → operation name, from botocore's model."""
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


def iam_actions_used(handler_module: str, exclude: Iterable[str] = (),
                     services_not_used: Iterable[str] = ()) -> set[str]:
    """``service:Action`` for every operation the handler's code can call;
    ``exclude`` are module prefixes and ``services_not_used`` services the
    deployed configuration never reaches (Timestream when the template
    selects DynamoDB for telemetry)."""
    services: set[str] = set()
    methods: set[str] = set()
    for module in closure(handler_module, exclude):
        found_services, found_methods = _services_and_methods(module)
        services |= found_services
        methods |= found_methods
    services -= set(services_not_used)
    actions = set()
    for service in services:
        for method in methods:
            operation = _operations(service).get(method)
            if operation is None or (service, operation) in NO_PERMISSION:
                continue
            prefix = IAM_PREFIX.get(service, service)
            action = f"{prefix}:{IAM_ACTION.get((service, operation), operation)}"
            actions |= {action, *IMPLIED.get(action, ())}
    return actions
