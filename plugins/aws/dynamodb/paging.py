"""Query, page by page: DynamoDB returns at most ``Limit`` items (and at most
1 MB) per call and a ``LastEvaluatedKey`` while more remain. Every listing
goes through here, so none can stop after the first page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from plugins.aws.dynamodb.codec import Item


def query_items(client: Any, page_size: int, **request: Any) -> Iterator[Item]:
    """Items of a Query, lazily: a caller that needs only the first few (a
    page of the console's table) stops reading further pages."""
    start: Item | None = None
    while True:
        kwargs = dict(request, Limit=page_size)
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        page = client.query(**kwargs)
        yield from page.get("Items", [])
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def query_count(client: Any, page_size: int, **request: Any) -> int:
    """``Select=COUNT`` over every page: the items never leave DynamoDB."""
    total = 0
    start: Item | None = None
    while True:
        kwargs = dict(request, Limit=page_size, Select="COUNT")
        if start is not None:
            kwargs["ExclusiveStartKey"] = start
        page = client.query(**kwargs)
        total += int(page.get("Count", 0))
        start = page.get("LastEvaluatedKey")
        if not start:
            return total


def batch_get(client: Any, table: str, keys: list[Item], *,
              projection: str | None = None) -> list[Item]:
    """BatchGetItem in chunks of 100, retrying what DynamoDB hands back unprocessed."""
    found: list[Item] = []
    for i in range(0, len(keys), 100):
        request: dict[str, Any] = {"Keys": keys[i:i + 100], "ConsistentRead": True}
        if projection:
            request["ProjectionExpression"] = projection
        pending: dict[str, Any] = {table: request}
        attempt = 0
        while pending:
            _back_off(attempt)
            answer = client.batch_get_item(RequestItems=pending)
            found.extend(answer.get("Responses", {}).get(table, []))
            pending = answer.get("UnprocessedKeys") or {}
            attempt += 1
    return found


def batch_put(client: Any, table: str, items: list[Item]) -> None:
    """BatchWriteItem in chunks of 25, retrying unprocessed items."""
    for i in range(0, len(items), 25):
        pending: dict[str, Any] = {
            table: [{"PutRequest": {"Item": item}} for item in items[i:i + 25]]}
        attempt = 0
        while pending:
            _back_off(attempt)
            answer = client.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            attempt += 1


def _back_off(attempt: int) -> None:
    """Unprocessed items mean the table is throttling: wait before asking again
    (exponential, capped), as AWS advises, instead of hammering it."""
    if attempt:
        time.sleep(min(0.05 * 2 ** attempt, 2.0))
