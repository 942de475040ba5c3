"""Local stand-in for the EventBridge rule's Step Functions target.

moto matches events against rules and delivers to SQS targets, but not to a state machine.
So the runtime adds one SQS "tap" target to the SAME rule the template created (same event
pattern, nothing re-declared here) and hands every event it receives to a callback that
starts the execution, as the rule's real target would, with the event as input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TAP_TARGET_ID = "local-runtime-tap"


@dataclass
class EventTap:
    sqs: Any
    queue_url: str

    @classmethod
    def attach(
        cls, events: Any, sqs: Any, rule_name: str, bus_name: str, queue_name: str = "local-runtime-tap"
    ) -> EventTap:
        queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_targets(Rule=rule_name, EventBusName=bus_name, Targets=[{"Id": TAP_TARGET_ID, "Arn": queue_arn}])
        return cls(sqs=sqs, queue_url=queue_url)

    def drain(self, deliver: Callable[[dict[str, Any]], None], max_messages: int = 1000) -> int:
        """Deliver every event waiting on the tap; a message is deleted only after ``deliver``
        returned, so a failed start is retried on the next drain rather than lost."""
        delivered = 0
        while delivered < max_messages:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                break
            for message in messages:
                deliver(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                delivered += 1
        return delivered
