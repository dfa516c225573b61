"""A Flower ``Grid`` that delivers each message to a ``ClientApp`` in this process, one node after another.

flwr 1.42's simulation runtime has one backend, Ray. On a small, heavily loaded machine Ray's node can
fail to start ("The current node timed out during startup ... the GCS has become overloaded") or
have its workers killed by its memory monitor. This grid runs the SAME ``ServerApp`` and
``ClientApp`` objects without Ray: ``send_and_receive`` calls ``client_app(message, context)`` for
each message, with a per-node ``Context`` whose node config carries ``partition-id`` /
``num-partitions`` as Flower's runtime sets them. Nothing about the apps changes; only the transport.
"""

from __future__ import annotations

from typing import Iterable

from flwr.app import Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.supercore.run import Run
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.task_identity import TaskIdentity

RUN_ID = 1
SERVER_NODE_ID = 0


class InProcessGrid(Grid):
    """``num_nodes`` virtual nodes (ids 1..N, partition ids 0..N-1) served by ``client_app`` in process."""

    def __init__(self, client_app: ClientApp, num_nodes: int):
        self.client_app = client_app
        self.contexts = {node: Context(run_id=RUN_ID, node_id=node, state=RecordDict(), run_config={},
                                       node_config={"partition-id": node - 1, "num-partitions": num_nodes})
                         for node in range(1, num_nodes + 1)}
        self._run = Run.create_empty(run_id=RUN_ID)
        self._replies: dict[str, Message] = {}

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return Message(content=content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.contexts)

    def _deliver(self, message: Message) -> Message:
        return self.client_app(message, self.contexts[message.metadata.dst_node_id])

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for index, message in enumerate(messages):
            key = f"{len(self._replies)}-{index}"
            self._replies[key] = self._deliver(message)
            ids.append(key)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(key) for key in message_ids if key in self._replies]

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        del timeout
        return [self._deliver(message) for message in messages]


def run_in_process(server_app: ServerApp, client_app: ClientApp, num_nodes: int) -> None:
    """Run ``server_app`` against ``num_nodes`` in-process nodes of ``client_app`` (sets Flower's task
    identity as its runtime does before any message is made)."""
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, RUN_ID, SERVER_NODE_ID
    server_app(InProcessGrid(client_app, num_nodes), Context(run_id=RUN_ID, node_id=SERVER_NODE_ID, node_config={},
                                                            state=RecordDict(), run_config={}))
