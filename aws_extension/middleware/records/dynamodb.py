"""`Records` on one DynamoDB table, for the AWS deployment.

Layout: partition key `pk` = kind, sort key `sk` = key, the document as a JSON string in
`doc` and an integer `version`. A JSON string rather than a DynamoDB map keeps documents
byte-for-byte what the services wrote (no Decimal round trips) and the same as in SQLite.
The table name comes from configuration (several stacks may share a region) and the boto3
client is injected, so tests hand in a moto-backed one and nothing connects at import time.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from aws_extension.middleware.errors import NotFound
from aws_extension.middleware.records.base import (
    AlreadyExists,
    Doc,
    Item,
    Records,
    VersionConflict,
    not_found,
)


def create_records_table(client: Any, table_name: str) -> None:
    """Create the records table (on-demand billing) and wait until it is usable.

    For tests and local experiments; deployed stacks get the table from CloudFormation.
    """
    client.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )


class DynamoRecords(Records):
    """Attribute names always go through `#` placeholders: some may be reserved words."""

    def __init__(self, client: Any, table_name: str) -> None:
        """`client` is a boto3 DynamoDB client (low-level, not the resource API)."""
        self._client = client
        self._table = table_name
        self._condition_failed = client.exceptions.ConditionalCheckFailedException

    def get(self, kind: str, key: str) -> Item | None:
        reply = self._client.get_item(
            TableName=self._table, Key=self._key(kind, key), ConsistentRead=True
        )
        return self._item(reply["Item"]) if "Item" in reply else None

    def create(self, kind: str, key: str, doc: Doc) -> Item:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._attributes(kind, key, 1, doc),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": "pk"},
            )
        except self._condition_failed:
            raise AlreadyExists(f"A {kind} named {key!r} already exists.") from None
        return Item(key, 1, doc)

    def update(self, kind: str, key: str, doc: Doc, *, expected_version: int) -> Item:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._attributes(kind, key, expected_version + 1, doc),
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._condition_failed as error:
            self._raise_missing_or_moved(kind, key, error)
        return Item(key, expected_version + 1, doc)

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> None:
        if expected_version is None:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": "pk"},
            }
        else:
            condition = {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
            }
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(kind, key),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **condition,
            )
        except self._condition_failed as error:
            self._raise_missing_or_moved(kind, key, error)

    def _after(self, kind: str, after: str | None, limit: int, descending: bool) -> list[Item]:
        items: list[Item] = []
        start = None if after is None else self._key(kind, after)
        # A Query returns at most 1 MB, so a page may take several calls.
        while len(items) < limit:
            request: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "#pk = :kind",
                "ExpressionAttributeNames": {"#pk": "pk"},
                "ExpressionAttributeValues": {":kind": {"S": kind}},
                "Limit": limit - len(items),
                "ConsistentRead": True,
                "ScanIndexForward": not descending,
            }
            if start is not None:
                request["ExclusiveStartKey"] = start
            reply = self._client.query(**request)
            items.extend(self._item(raw) for raw in reply.get("Items", []))
            start = reply.get("LastEvaluatedKey")
            if start is None:
                break
        return items

    @staticmethod
    def _key(kind: str, key: str) -> dict[str, Any]:
        return {"pk": {"S": kind}, "sk": {"S": key}}

    @staticmethod
    def _attributes(kind: str, key: str, version: int, doc: Doc) -> dict[str, Any]:
        return {
            "pk": {"S": kind},
            "sk": {"S": key},
            "version": {"N": str(version)},
            "doc": {"S": json.dumps(doc, separators=(",", ":"), sort_keys=True)},
        }

    @staticmethod
    def _item(raw: dict[str, Any]) -> Item:
        return Item(raw["sk"]["S"], int(raw["version"]["N"]), json.loads(raw["doc"]["S"]))

    @staticmethod
    def _raise_missing_or_moved(kind: str, key: str, error: Exception) -> NoReturn:
        # ReturnValuesOnConditionCheckFailure puts the current item into the error, if any.
        current = getattr(error, "response", {}).get("Item")
        if current is None:
            raise NotFound(not_found(kind, key)) from None
        raise VersionConflict(
            f"The {kind} {key!r} was changed by someone else; read it again and retry."
        ) from None
